"""Cleaning rules (corpus/rules.py, corpus/dedupe.py) and applying them to the database."""
from __future__ import annotations


import pytest

from corpus.rules import CleanOptions, clean_post, normalise, strip_noise, tidy_generated
from corpus.cleaning import clean_corpus, clean_if_needed
from corpus.dedupe import find_duplicates
from corpus.stoplist import StopList
from corpus.store.drafts import add_draft
from corpus.store.posts import add_posts, exclusion_counts

GOOD = "ПРИХОДИШЬ В ШКОЛУ\n@\nТАМ КОНТРОЛЬНАЯ\n@\nТЫ НЕ ГОТОВ"


def reason(text, **post):
    return clean_post({"text": text, **post})[1]


def test_separator_variants_become_one_canonical_line():
    raw = "  ПРИХОДИШЬ\u00a0 В ШКОЛУ \r\n@@@\r\n\r\nТАМ\u200b КОНТРОЛЬНАЯ\n @ \n@\nТЫ НЕ ГОТОВ\n@\n"
    assert normalise(raw) == GOOD
    assert normalise("ОДИН @ ДВА @@ ТРИ") == "ОДИН\n@\nДВА\n@\nТРИ"
    assert normalise("ОДИН @ ДВА", CleanOptions(inline_separators=False)) == "ОДИН @ ДВА"
    assert normalise("@\nА\n@\n@\nБ") == "А\n@\nБ"


def test_generated_text_gets_its_glued_and_dangling_separators_fixed():
    assert tidy_generated("А\n@\nБ\n@") == "А\n@\nБ"                      # closed with "@" before the gap
    assert tidy_generated("А\n@\nБ@\nВ") == "А\n@\nБ\n@\nВ"                # "@" glued to a line's end
    assert tidy_generated('А\n@"ЦИТАТА\n@\nБ') == 'А\n@\n"ЦИТАТА\n@\nБ'    # ... or to a line's start
    assert tidy_generated("А\n@\n@durov ПИШЕТ") == "А\n@\n@durov ПИШЕТ"      # a mention stays
    assert tidy_generated("@\nА  @  Б\n@@\n\n@") == "А\n@\nБ"
    assert tidy_generated(GOOD) == GOOD


def test_signature_and_hashtag_lines_are_stripped_but_post_kept():
    text, stripped = strip_noise(normalise(GOOD + "\n#бугурт #тред\n\n[БУГУРТ-ТРЕД](https://t.me/bugurtthread)"))
    assert text == GOOD and stripped == ["signature", "hashtag_lines"]
    assert clean_post({"text": GOOD + "\n[БУГУРТ-ТРЕД](https://t.me/x)"})[:2] == (GOOD, None)
    kept, _ = strip_noise(GOOD + "\n#тег", CleanOptions(strip_hashtag_lines=False))
    assert kept.endswith("#тег")
    # an invisible link (a media preview) is removed, not counted as a link
    assert clean_post({"text": "[\u200c](https://x.userapi.com/a.jpg)" + GOOD}) == (GOOD, None, [])


@pytest.mark.parametrize("raw, clean", [
    ("ПИВО [🍺](video_files/sticker (2).webm)", "ПИВО 🍺"),  # issue 26, point 16: the space hid it
    ("[😄](stickers/AnimatedSticker.tgs)ЭМОДЗИ (ТРУ)", "😄ЭМОДЗИ (ТРУ)"),
    ("ДВА [🍺](video_files/a (1) (2).webm) И [🔥](photos/photo_1@05-09-2020.jpg) (ВОТ)", "ДВА 🍺 И 🔥 (ВОТ)"),
])
def test_a_sticker_link_already_in_the_database_keeps_only_its_emoji(raw, clean):
    """Rows imported before the HTML importer dropped links to the export's own files."""
    text, reason, _ = clean_post({"text": f"{raw}\n@\nВТОРАЯ\n@\nТРЕТЬЯ"})
    assert text == f"{clean}\n@\nВТОРАЯ\n@\nТРЕТЬЯ" and reason is None


@pytest.mark.parametrize("text, post, expected", [
    (GOOD, {"is_repost": 1}, "repost"),
    (GOOD, {"is_ad": 1}, "ad"),
    (GOOD + "\nerid: 2VtzqwXyz", {}, "ad"),
    (GOOD + " #нейробугурт", {}, "neural"),
    (GOOD + " #конкурс", {}, "tagged"),
    ("⚡️ СРОЧНО: НОВОСТЬ\n@\nА\n@\nБ", {}, "news"),
    ("ЗАХОДИ https://example.org\n@\nА\n@\nБ", {}, "link"),
    ("ПОДПИШИСЬ НА [https://t.me/joinchat/x](https://t.me/joinchat/x)\n@\nА\n@\nБ", {}, "link"),
    ("ПОДПИШИСЬ НА [КАНАЛ](https://t.me/joinchat/x) ЭТО\n@\nА\n@\nБ", {}, None),  # a name keeps its text
    ("ЗАХОДИ НА vk.com/club1\n@\nА\n@\nБ", {}, "link"),
    ("[БУГУРТ-ТРЕД](https://t.me/bugurtthread)", {"has_attachments": 1}, "media_only"),
    ("", {"has_attachments": 1}, "media_only"),
    ("  \n@\n ", {}, "empty"),
    ("А\n@\nБ\n@\nВ", {}, "too_short"),
    ("ДЛИННО\n@\n" + "А" * 5000 + "\n@\nКОНЕЦ", {}, "too_long"),
    ("ОДНА ЧАСТЬ ДЛИННАЯ\n@", {}, "few_separators"),
    ("ОДНА ЧАСТЬ\n@\nДРУГАЯ ЧАСТЬ", {}, None),                    # a two-line buhurt is kept
    (GOOD, {}, None),
])
def test_every_drop_rule(text, post, expected):
    assert reason(text, **post) == expected


def test_rules_can_be_switched_off_and_tuned():
    off = CleanOptions(drop_reposts=False, drop_links=False, min_separators=1, drop_ads=False)
    assert clean_post({"text": GOOD, "is_repost": 1}, off)[1] is None
    assert clean_post({"text": "А https://x.ru\n@\nБББББББББ"}, off)[1] is None
    assert clean_post({"text": GOOD, "is_ad": 1}, off)[1] is None
    assert clean_post({"text": GOOD}, CleanOptions(min_chars=100))[1] == "too_short"
    assert clean_post({"text": GOOD, "is_repost": 1}, CleanOptions(enabled=False))[1] is None
    assert clean_post({"text": GOOD + " #свойтег"}, CleanOptions(drop_tags=["#свойтег"]))[1] == "tagged"
    stop = StopList(words=["контрольная"])
    assert clean_post({"text": GOOD}, CleanOptions(), stop)[1] == "stoplist"
    assert CleanOptions(near_duplicate_threshold=2).problems()
    assert CleanOptions(ad_patterns=["("]).problems()


def test_exact_and_near_duplicates_keep_the_first():
    texts = [
        GOOD,
        "приходишь в школу\n@\nтам контрольная!\n@\nты не готов",          # exact (folded)
        "ПРИХОДИШЬ В ШКОЛУ\n@\nТАМ КОНТРОЛЬНАЯ ПО АЛГЕБРЕ\n@\nТЫ НЕ ГОТОВ",  # near
        "СОВСЕМ ДРУГОЙ БУГУРТ\n@\nПРО КОТА\n@\nКОТ ДОВОЛЕН",
    ]
    assert find_duplicates(texts, threshold=0.7) == {1: "duplicate", 2: "near_duplicate"}
    assert find_duplicates(texts, near=False) == {1: "duplicate"}
    assert find_duplicates(texts, exact=False, near=False) == {}
    assert find_duplicates(texts[3:], references=[texts[3].lower()]) == {0: "generated"}


def test_near_duplicates_on_thousands_of_posts_find_exactly_the_planted_copies():
    # speed is measured in benchmarks/, not asserted here; this checks the index at scale
    texts = [f"ПОСТ {i} ПРО {i * 7919 % 10007} КОТОВ\n@\nСТРОКА {i * 31 % 997} И {i % 13}\n@\nКОНЕЦ {i}"
             for i in range(6300)]
    texts.append(texts[17].lower())                      # the same post, other case
    texts.append(texts[4000] + "\n@\nИ ЕЩЁ ОДНА")         # a near copy (one line more)
    dropped = find_duplicates(texts)
    assert dropped.get(6300) == "duplicate"
    assert dropped.get(6301) == "near_duplicate"
    assert all(i >= 6300 for i in dropped), sorted(i for i in dropped if i < 6300)[:5]


def test_cleaning_new_posts_reads_near_duplicate_candidates_back_from_the_database(db):
    """The duplicate pass holds no texts: a new post near a kept one is found through the kept
    post's text read back from `posts`, and near another new one through the run's decisions table."""
    kept = "ПРИХОДИШЬ ДОМОЙ ПОСЛЕ ДОЛГОГО ДНЯ\n@\nМАМКА ГОВОРИТ ЧТО УЖИН НА ПЛИТЕ\n@\nОТКРЫВАЕШЬ КАСТРЮЛЮ А ТАМ ПУСТО"
    other = "ИДЁШЬ НА ОСТАНОВКУ ПОД ДОЖДЁМ\n@\nАВТОБУС УЕЗЖАЕТ ПРЯМО ПЕРЕД НОСОМ\n@\nСЛЕДУЮЩИЙ ЧЕРЕЗ СОРОК МИНУТ"
    add_posts(db, [{"source": "file", "text": kept}])
    clean_corpus(db)
    add_posts(db, [{"source": "file", "text": kept + " СОВСЕМ"}, {"source": "file", "text": other},
                   {"source": "file", "text": other + " ОПЯТЬ"}])
    report = clean_if_needed(db)
    assert (report.total, report.kept, dict(report.excluded)) == (3, 1, {"near_duplicate": 2})
    assert exclusion_counts(db) == {"": 2, "near_duplicate": 2}
    assert db.execute("SELECT count(*) FROM temp.sqlite_master WHERE name = 'cleaning_decisions'").fetchone() == (0,)


def test_clean_corpus_stores_results_and_drops_the_bots_own_output(db):
    draft = "БОТ НАПИСАЛ ЭТО\n@\nСОВСЕМ САМ\n@\nБЕЗ ЛЮДЕЙ"
    add_draft(db, text=draft, model_version="v1", temperature=0.8, seed=1, max_length=500)
    add_posts(db, [
        {"source": "file", "text": GOOD},
        {"source": "file", "text": GOOD + "\n\n"},
        {"source": "file", "text": draft.lower()},
        {"source": "file", "text": "ССЫЛКА https://x.ru\n@\nА\n@\nБ"},
    ])
    report = clean_corpus(db)
    assert report.total == 4 and report.kept == 1
    assert report.excluded == {"duplicate": 1, "generated": 1, "link": 1}
    assert exclusion_counts(db) == {"": 1, "duplicate": 1, "generated": 1, "link": 1}
    assert "  generated         1" in report.lines()
    assert clean_if_needed(db) is None
    add_posts(db, [{"source": "file", "text": "НОВЫЙ ПОСТ\n@\nЕЩЁ СТРОКА\n@\nКОНЕЦ"},
                   {"source": "file", "text": GOOD.lower() + "!"}])
    report = clean_if_needed(db)  # only the two new posts are decided, against the kept corpus
    assert (report.total, report.kept, dict(report.excluded)) == (2, 1, {"duplicate": 1})
    assert exclusion_counts(db) == {"": 2, "duplicate": 2, "generated": 1, "link": 1}
