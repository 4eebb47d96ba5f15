"""Telegram Desktop exports (JSON and HTML) into the corpus."""
from __future__ import annotations

import json

import pytest

from corpus.errors import CorpusError
from corpus.telegram_export import import_telegram_export
from corpus.telegram_html import parse_date

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"/><title>Exported Data</title></head>
<body><div class="page_wrap"><div class="page_header"><div class="content"><div class="text bold">
ТЕСТОВЫЙ КАНАЛ
</div></div></div>
<div class="page_body chat_page"><div class="history">
<div class="message service" id="message-1"><div class="body details">5 September 2020</div></div>
{messages}
</div></div></div></body></html>
"""

MESSAGE = """<div class="message default clearfix{joined}" id="message{id}"><div class="body">
<div class="pull_right date details" title="{date}">17:41</div>
{extra}
<div class="text">
{text}
</div>
{reactions}
</div></div>
"""

MEDIA = """<div class="media_wrap clearfix"><div class="media clearfix pull_left media_photo">
<div class="body"><div class="title bold">Photo</div></div></div></div>"""

FORWARDED = """<div class="forwarded body"><div class="from_name">ДРУГОЙ <span class="date details"
title="14.09.2020 15:52:48 UTC+03:00"> 14.09.2020</span></div><div class="text">НОВОСТЬ ЧУЖАЯ</div></div>"""

REACTIONS = """<span class="reactions"><span class="reaction"><span class="emoji">👍</span>
<span class="count">12</span></span><span class="reaction"><span class="emoji">🔥</span>
<span class="count">3</span></span></span>"""


def message(mid, text, *, date="05.09.2020 17:41:55 UTC+03:00", extra="", reactions="", joined=False):
    return MESSAGE.format(id=mid, text=text, date=date, extra=extra, reactions=reactions,
                          joined=" joined" if joined else "")


def write_pages(folder, pages):
    folder.mkdir(parents=True, exist_ok=True)
    for number, messages in enumerate(pages, 1):
        name = "messages.html" if number == 1 else f"messages{number}.html"
        (folder / name).write_text(PAGE.format(messages="".join(messages)), encoding="utf-8")
    return folder


def test_html_pages_import_whole_with_dates_ids_reactions_and_links(db, tmp_path):
    folder = write_pages(tmp_path / "export", [
        [message(10, "ПЕРВЫЙ &quot;БУГУРТ&quot;<br>@<br>ВТОРАЯ СТРОКА<br>@<br>ТРЕТЬЯ<br><br>"
                     '<a href="https://t.me/test">ТЕСТОВЫЙ КАНАЛ</a>', extra=MEDIA, reactions=REACTIONS),
         message(11, "ВТОРОЙ<br>@<br>А<br>@<br>Б", joined=True)],
        [message(12, "", extra=FORWARDED)],
    ])
    result = import_telegram_export(db, folder)
    assert (result.community, result.messages, result.added, result.files) == ("ТЕСТОВЫЙ КАНАЛ", 3, 3, 2)
    rows = {r["external_id"]: r for r in db.query("SELECT * FROM posts")}
    first = rows["10"]
    assert first["text"] == 'ПЕРВЫЙ "БУГУРТ"\n@\nВТОРАЯ СТРОКА\n@\nТРЕТЬЯ\n\n[ТЕСТОВЫЙ КАНАЛ](https://t.me/test)'
    assert first["date"] == "2020-09-05T14:41:55+00:00"
    assert first["reactions"] == 15 and json.loads(first["reactions_json"]) == {"👍": 12, "🔥": 3}
    assert first["has_attachments"] == 1 and first["source"] == "telegram"
    assert rows["12"]["is_repost"] == 1 and rows["12"]["text"] == "НОВОСТЬ ЧУЖАЯ"
    again = import_telegram_export(db, folder)
    assert again.added == 0 and db["posts"].count == 3


def test_json_export_with_entities_and_reactions(db, tmp_path):
    export = {
        "name": "ТЕСТОВЫЙ КАНАЛ", "type": "public_channel", "id": 1,
        "messages": [
            {"id": 1, "type": "service", "action": "create_channel", "date": "2020-09-05T10:00:00"},
            {"id": 2, "type": "message", "date": "2020-09-05T17:41:55", "date_unixtime": "1599316915",
             "text": ["ЗАГОЛОВОК\n@\nСТРОКА\n@\nКОНЕЦ\n\n",
                      {"type": "text_link", "text": "КАНАЛ", "href": "https://t.me/test"}],
             "reactions": [{"type": "emoji", "count": 5, "emoji": "👍"},
                           {"type": "custom_emoji", "count": 2, "document_id": "77"}],
             "photo": "(File not included)"},
            {"id": 3, "type": "message", "date": "2020-09-06T10:00:00", "text": "ПРОСТО ТЕКСТ",
             "forwarded_from": "КТО-ТО"},
        ],
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    result = import_telegram_export(db, tmp_path)
    assert (result.messages, result.added) == (2, 2)
    row = db.execute("SELECT text, date, reactions, reactions_json, has_attachments FROM posts"
                     " WHERE external_id = '2'").fetchone()
    assert row[0] == "ЗАГОЛОВОК\n@\nСТРОКА\n@\nКОНЕЦ\n\n[КАНАЛ](https://t.me/test)"
    assert row[1] == "2020-09-05T14:41:55+00:00" and row[2] == 7 and row[4] == 1
    assert json.loads(row[3]) == {"👍": 5, "custom:77": 2}
    assert import_telegram_export(db, path).added == 0


def test_dates_with_offsets():
    assert parse_date("31.12.2020 23:30:00 UTC-02:30") == "2021-01-01T02:00:00+00:00"
    assert parse_date("no date") is None


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such file"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "neither result.json"),
    (lambda p: (p / "x.txt").write_text("x") and p / "x.txt", "expected result.json"),
    (lambda p: (p / "result.json").write_text("{bad") and p / "result.json", "malformed JSON"),
    (lambda p: (p / "result.json").write_text('{"chats": {}}') and p / "result.json", "full-account"),
    (lambda p: (p / "messages.html").write_bytes(b"\xff\xfe<html>") and p / "messages.html", "not UTF-8"),
    (lambda p: (p / "messages.html").write_text("<html><body>hi</body></html>") and p / "messages.html",
     "not a Telegram Desktop export page"),
])
def test_bad_exports_give_one_line_errors(db, tmp_path, make, message):
    with pytest.raises(CorpusError, match=message):
        import_telegram_export(db, make(tmp_path))
