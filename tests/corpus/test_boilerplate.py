"""Issue 12: cleaning that keeps every real buhurt. A made-up channel ("КОТОТРЕД", its own
suggestion bot and link line) exported both as HTML pages and as result.json: learned signatures,
links, two-line posts, editor notes, generated text, chats, input limits, incremental cleaning."""
from __future__ import annotations

import html
import json
import os

import pytest

from corpus.rules import CleanOptions, clean_post, hashtags
from corpus.cleaning import clean_corpus
from corpus.errors import CorpusError
from corpus.importer import import_text_file
from corpus.signatures import SignatureLearner, line_key
from corpus.store.posts import add_posts
from corpus.telegram_export import import_telegram_export
from tests.fakes.telegram_export import PAGE, message

BOT = "kotopredlozhka_bot"
BODIES = [
    "КОТ ПРОСНУЛСЯ В ПЯТЬ УТРА\n@\nРАЗБУДИЛ ВСЕХ\n@\nУСНУЛ В ВОСЕМЬ",
    "НАСЫПАЛ КОРМ\n@\nКОТ НЕ ЕСТ\n@\nЕСТ СОБАКА",
    "КУПИЛ КОТУ ДОМИК\n@\nКОТ СПИТ В КОРОБКЕ",                         # a two-line buhurt
    "ПОГЛАДИЛ КОТА\n@\nКОТ МУРЧИТ\n@\nПОЦАРАПАЛ",
    "ОТКРЫЛ ХОЛОДИЛЬНИК\n@\nКОТ УЖЕ ВНУТРИ\n@\nСМОТРИТ С ОСУЖДЕНИЕМ",
    "КОТ ЛЕЖИТ НА КЛАВИАТУРЕ\n@\nОТЧЁТ ОТПРАВЛЕН\n@\nНАЧАЛЬНИК ДОВОЛЕН",
    "ВЫНЕС МУСОР\n@\nКОТ СБЕЖАЛ\n@\nВЕРНУЛСЯ С МЫШЬЮ",
    "ПОСТАВИЛ ЁЛКУ\n@\nКОТ НА ВЕРХУШКЕ",                                 # a two-line buhurt
    "ЗАВЁЛ ВТОРОГО КОТА\n@\nКОТЫ ДРУЖАТ\n@\nПРОТИВ ТЕБЯ",
    "КОТ УРОНИЛ ЧАШКУ\n@\nСМОТРИТ В ГЛАЗА\n@\nРОНЯЕТ ВТОРУЮ",
]


def _html_text(body: str, author: str | None) -> str:
    """One message's text the way Telegram Desktop writes it: <br>, mentions as links."""
    out = html.escape(body).replace("\n", "<br>")
    if author:
        out += (f'<br><br>прислал <a href="https://t.me/{author}">@{author}</a> через '
                f'<a href="https://t.me/{BOT}">@{BOT}</a>')
    return out + '<br><a href="https://t.me/kototred">🐈 КОТОТРЕД</a>'


def _json_text(body: str, author: str | None) -> list:
    parts: list = [body]
    if author:
        parts += ["\n\nприслал ", {"type": "mention", "text": f"@{author}"}, " через ",
                  {"type": "mention", "text": f"@{BOT}"}]
    return parts + ["\n", {"type": "text_link", "text": "🐈 КОТОТРЕД", "href": "https://t.me/kototred"}]


EXTRA_HTML = [
    # a sticker emoji, a phone number, a mention, a bare site name: text kept, not link posts
    (101, 'ЗВОНЮ ВЕТЕРИНАРУ <a href="tel:88005553535">88005553535</a><br>@<br>'
          'ОТВЕЧАЕТ <a href="https://t.me/vetbot">@vetbot</a> <a href="stickers/sticker.webp">😿</a><br>@<br>'
          'ЗАКАЗАЛ КОРМ НА KOTOKORM.RU'),
    (102, "КОТ ЛЕЗЕТ НА ШТОРУ<br>@<br>ШТОРА ПАДАЕТ<br>@<br>КОТ ДОВОЛЕН<br>__________<br>Прим. ред.: жиза"),
    (103, "ЭТОТ БУГУРТ НАПИСАЛА НЕЙРОСЕТЬ<br>@<br>ПРО КОТА<br>@<br>КОТ НЕ ПОНЯЛ"),
    (104, "КОТ СМОТРИТ В ОКНО<br>@<br>ПИШЕТ &quot;#нейробугурт&quot; В ЧАТЕ<br>@<br>КОТ ХАКЕР"),
    (105, 'СМОТРИ <a href="https://example.org/cats">https://example.org/cats</a><br>@<br>ТАМ КОТЫ<br>@<br>ВСЕ'),
    # a line break inside a link: each line keeps its own text
    (106, 'КОТ УШЁЛ<br>@<br><a href="https://t.me/kototred">ВЕРНУЛСЯ<br>С ДРУЗЬЯМИ</a><br>@<br>ОСТАЛИСЬ ЖИТЬ'),
]
EXTRA_JSON = [
    (101, ["ЗВОНЮ ВЕТЕРИНАРУ ", {"type": "phone", "text": "88005553535"}, "\n@\nОТВЕЧАЕТ ",
           {"type": "mention", "text": "@vetbot"}, " ", {"type": "custom_emoji", "text": "😿", "document_id": "5"},
           "\n@\nЗАКАЗАЛ КОРМ НА KOTOKORM.RU"]),
    (102, "КОТ ЛЕЗЕТ НА ШТОРУ\n@\nШТОРА ПАДАЕТ\n@\nКОТ ДОВОЛЕН\n__________\nПрим. ред.: жиза"),
    (103, "ЭТОТ БУГУРТ НАПИСАЛА НЕЙРОСЕТЬ\n@\nПРО КОТА\n@\nКОТ НЕ ПОНЯЛ"),
    (104, 'КОТ СМОТРИТ В ОКНО\n@\nПИШЕТ "#нейробугурт" В ЧАТЕ\n@\nКОТ ХАКЕР'),
    (105, ["СМОТРИ ", {"type": "link", "text": "https://example.org/cats"}, "\n@\nТАМ КОТЫ\n@\nВСЕ"]),
    (106, ["КОТ УШЁЛ\n@\n", {"type": "text_link", "text": "ВЕРНУЛСЯ\nС ДРУЗЬЯМИ", "href": "https://t.me/kototred"},
           "\n@\nОСТАЛИСЬ ЖИТЬ"]),
]


def _author(i: int) -> str | None:
    return None if i % 4 == 3 else f"user{i}"  # most, not all, posts came through the bot


def write_html(folder, *, channel="КОТОТРЕД", extra=True):
    folder.mkdir(parents=True, exist_ok=True)
    messages = [message(i + 1, _html_text(b, _author(i))) for i, b in enumerate(BODIES)]
    messages += [message(mid, text) for mid, text in EXTRA_HTML] if extra else []
    page = PAGE.replace("ТЕСТОВЫЙ КАНАЛ", channel).format(messages="".join(messages))
    (folder / "messages.html").write_text(page, encoding="utf-8")
    return folder


def write_json(folder, *, kind="public_channel"):
    folder.mkdir(parents=True, exist_ok=True)
    messages = [{"id": i + 1, "type": "message", "date": "2023-01-01T10:00:00", "date_unixtime": str(1672567200 + i),
                 "text": _json_text(b, _author(i))} for i, b in enumerate(BODIES)]
    messages += [{"id": mid, "type": "message", "date": "2023-01-02T10:00:00", "date_unixtime": "1672653600",
                  "text": text} for mid, text in EXTRA_JSON]
    data = {"name": "КОТОТРЕД", "type": kind, "id": 7, "messages": messages}
    (folder / "result.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


def cleaned(db, community):
    return {r[0]: (r[1], r[2]) for r in db.execute(
        "SELECT external_id, clean_text, excluded_reason FROM posts WHERE community = ?", [community])}


@pytest.fixture
def options():
    return CleanOptions(signature_min_posts=3, signature_min_share=0.2)


def test_made_up_channel_signature_is_learned_and_stripped(db, tmp_path, options):
    import_telegram_export(db, write_html(tmp_path / "html"), community="html")
    report = clean_corpus(db, options)
    assert ("end", "прислал через", 8) in report.signatures["html"]
    assert any("  [html] end" in line and "прислал через" in line for line in report.lines())
    assert report.stripped["learned_signature"] == 8 and report.stripped["signature"] == 10
    texts = cleaned(db, "html")
    for i, body in enumerate(BODIES):
        assert texts[str(i + 1)] == (body, None)  # two-line buhurts included
    assert not any("прислал" in (t or "") or "КОТОТРЕД" in (t or "") for t, _ in texts.values())


def test_html_and_json_exports_of_the_same_messages_clean_the_same(db, tmp_path, options):
    from corpus.db import open_db

    import_telegram_export(db, write_html(tmp_path / "html"), community="html")
    json_export = write_json(tmp_path / "json")
    assert import_telegram_export(db, json_export, community="json").added == 0   # the same channel's messages
    other = open_db(tmp_path / "json.sqlite3")   # ... so the JSON side is cleaned in a corpus of its own
    try:
        import_telegram_export(other, json_export, community="json")
        clean_corpus(db, options)
        clean_corpus(other, options)
        html_side, json_side = cleaned(db, "html"), cleaned(other, "json")
    finally:
        other.close()
    assert html_side.keys() == json_side.keys() and len(html_side) == len(BODIES) + len(EXTRA_HTML)
    for key in html_side:
        assert html_side[key][0] == json_side[key][0], key
    reasons = {k: r for k, (_, r) in html_side.items()}
    # links: a phone, a mention, a sticker's emoji, a bare site name keep their text; a URL is a link
    assert html_side["101"] == ("ЗВОНЮ ВЕТЕРИНАРУ 88005553535\n@\nОТВЕЧАЕТ @vetbot 😿\n@\nЗАКАЗАЛ КОРМ НА KOTOKORM.RU",
                                None)
    assert reasons["105"] == "link"
    assert html_side["102"] == ("КОТ ЛЕЗЕТ НА ШТОРУ\n@\nШТОРА ПАДАЕТ\n@\nКОТ ДОВОЛЕН", None)  # the note stripped
    assert reasons["103"] == "neural"                                   # says it is machine-generated
    assert reasons["104"] is None                                       # a quoted hashtag is not a tag
    # a line break inside a link stays where it was
    assert html_side["106"] == ("КОТ УШЁЛ\n@\nВЕРНУЛСЯ\nС ДРУЗЬЯМИ\n@\nОСТАЛИСЬ ЖИТЬ", None)


def test_editor_notes_are_counted_and_tags_are_only_tags_in_tag_position(db):
    add_posts(db, [{"source": "file", "text": "А КОТ\n@\nБЕГАЕТ\nP.S. от админа: правда"}])
    report = clean_corpus(db)
    assert report.stripped["editor_note"] == 1 and "  editor_note       1" in report.lines()
    assert hashtags("ПЯТНИЦА\n@\nказалось бы, #антибугурт\n@\nСУББОТА") == set()
    assert hashtags("#нейробугурт\nА\n@\nБ") == {"#нейробугурт"}
    assert hashtags("А\n@\nБ #НейроБугурт") == {"#нейробугурт"}
    assert clean_post({"text": "КОТ ПИШЕТ КОД\n@\nЭТОТ ТЕКСТ СГЕНЕРИРОВАН НЕЙРОСЕТЬЮ"})[1] == "neural"


def test_learned_signatures_keep_buhurt_lines_and_obey_the_operator(options):
    learner = SignatureLearner()
    for i in range(10):
        learner.add(f"СТРОКА {i}\n@\nПИКРЕЛЕЙТЕД\nпредложено @u{i} через @bot")
    sigs = learner.signatures(min_posts=3, min_share=0.2)
    assert sigs.end == {"предложено через": 10}                       # the punchline is never counted
    assert sigs.strip("А\n@\nПИКРЕЛЕЙТЕД\nПредложено  @x через @bot") == ("А\n@\nПИКРЕЛЕЙТЕД", 1)  # noqa: B005 - Signatures.strip
    kept = learner.signatures(min_posts=3, min_share=0.2, keep=["Предложено через"])
    assert kept.end == {}
    extra = learner.signatures(min_posts=99, patterns=[r"^подпишись"])
    assert extra.strip("А\n@\nБ\nПодпишись на нас!") == ("А\n@\nБ", 1)  # noqa: B005 - Signatures.strip
    assert line_key("  Предложено [x] @Ёжик через https://t.me/x ") == "предложено [x] через ‹url›"
    assert CleanOptions(signatures=["("]).problems() and CleanOptions(signature_min_posts=0).problems()


def test_chat_exports_need_allow_chat(db, tmp_path):
    folder = write_json(tmp_path / "group", kind="private_supergroup")
    with pytest.raises(CorpusError, match=r"a private supergroup export, not a channel.*--allow-chat"):
        import_telegram_export(db, folder)
    assert db["posts"].count == 0
    assert import_telegram_export(db, folder, allow_chat=True).added == len(BODIES) + len(EXTRA_JSON)
    page = write_html(tmp_path / "chat_html", extra=False)
    text = (page / "messages.html").read_text(encoding="utf-8").replace(
        '<div class="body">\n<div class="pull_right date details"',
        '<div class="body">\n<div class="from_name">Вася</div>\n<div class="pull_right date details"', 1)
    (page / "messages.html").write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"chat \(messages written by Вася\).*--allow-chat"):
        import_telegram_export(db, page, community="chat")
    assert db.execute("SELECT count(*) FROM posts WHERE community = 'chat'").fetchone()[0] == 0
    own = write_html(tmp_path / "own", extra=False)
    text = (own / "messages.html").read_text(encoding="utf-8").replace(
        '<div class="body">\n<div class="pull_right', '<div class="body">\n<div class="from_name">КОТОТРЕД </div>'
        '\n<div class="pull_right')
    (own / "messages.html").write_text(text, encoding="utf-8")
    assert import_telegram_export(db, own, community="own").messages == len(BODIES)  # the channel's own name


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_non_regular_and_oversized_files_are_refused(db, tmp_path):
    with pytest.raises(CorpusError, match="/dev/zero: not a regular file"):
        import_text_file(db, "/dev/zero")
    fifo = tmp_path / "result.json"
    os.mkfifo(fifo)
    with pytest.raises(CorpusError, match="not a regular file"):
        import_telegram_export(db, fifo)
    big = tmp_path / "big.txt"
    big.write_text("КОТ\n@\nСПИТ\n\n" * 20000, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"big.txt: 0.4 MB is larger than corpus.max_import_mb = 0.1"):
        import_text_file(db, big, max_mb=0.1)
    assert db["posts"].count == 0
    assert import_text_file(db, big, max_mb=1) == (1, 19999)


def test_cleaning_after_an_import_touches_only_the_new_posts(db, tmp_path, options):
    import_telegram_export(db, write_html(tmp_path / "html", extra=False), community="kt")
    clean_corpus(db, options)
    db.execute("UPDATE posts SET clean_text = 'OLD DECISION' WHERE external_id = '1'")
    db.conn.commit()
    add_posts(db, [{"source": "telegram", "community": "kt", "external_id": "500",
                    "text": BODIES[1] + "\n\nприслал @zed через @" + BOT},
                   {"source": "telegram", "community": "kt", "external_id": "501",
                    "text": "НОВЫЙ КОТ\n@\nНОВАЯ БЕДА\n\nприслал @zed через @" + BOT}])
    report = clean_corpus(db, options, only_new=True)
    assert report.total == 2 and sorted(report.cleaned_ids) == sorted(
        r[0] for r in db.execute("SELECT id FROM posts WHERE external_id IN ('500', '501')"))
    texts = cleaned(db, "kt")
    assert texts["1"][0] == "OLD DECISION"                              # not touched
    assert texts["500"] == (BODIES[1], "duplicate")                    # against the kept corpus
    assert texts["501"] == ("НОВЫЙ КОТ\n@\nНОВАЯ БЕДА", None)           # signature learned from all


def test_the_operator_keeps_a_line_or_adds_a_pattern(db, tmp_path):
    import_telegram_export(db, write_html(tmp_path / "html", extra=False), community="kt")
    keep = CleanOptions(signature_min_posts=3, signature_min_share=0.2, keep_lines=["Прислал через"])
    report = clean_corpus(db, keep)
    assert report.signatures["kt"] == [] and report.stripped["learned_signature"] == 0
    assert "прислал @user0 через" in cleaned(db, "kt")["1"][0]
    pattern = CleanOptions(learn_signatures=False, signatures=[r"^прислал\b"])
    report = clean_corpus(db, pattern)
    assert report.stripped["learned_signature"] == 8 and cleaned(db, "kt")["1"] == (BODIES[0], None)
