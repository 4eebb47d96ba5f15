"""A Telegram Desktop HTML export, written by the tests: the page, a message (with media, a forwarded
part, reactions, joined to the one before) and a folder of pages (messages.html, messages2.html, ...)."""
from __future__ import annotations


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
