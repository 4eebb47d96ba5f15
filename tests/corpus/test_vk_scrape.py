"""The VK scraper (corpus/vk.py) with the real vk_api client against the fake VK API."""
from __future__ import annotations

import pytest

from corpus.errors import CorpusError
from corpus.vk import scrape, scrape_settings
from corpus.vk_client import wall_script
from tests.fakes.fake_vk import GOOD_TOKEN, FakeVk, FakeWall


def wall(n=3000, **kwargs) -> FakeWall:
    w = FakeWall(42, "bugurt_test", **kwargs)
    w.generate(n)
    return w


def run(db, fake, groups=("bugurt_test",), **kwargs):
    sleeps = kwargs.pop("sleeps", [])
    options = dict(token=GOOD_TOKEN, requests_per_second=1000, session=fake.session(), progress=False,
                   refresh_days=0, sleep=sleeps.append)
    options.update(kwargs)
    return scrape(db, list(groups), **options)


def stored(db) -> list[int]:
    return [int(r[0]) for r in db.execute("SELECT external_id FROM posts WHERE source = 'vk'")]


def test_full_scrape_batches_backs_off_and_stores_every_field(db):
    w = wall(3000)
    w.pinned_id = 1200
    fake = FakeVk(w)
    fake.errors = {2: 6, 4: 9}               # top-level: too many requests, flood control
    fake.inner_errors = {3: (5, 9)}          # flood control inside an execute
    sleeps = []
    report = run(db, fake, sleeps=sleeps)
    ids = stored(db)
    assert sorted(ids) == sorted(w.posts) and len(ids) == len(set(ids)) == 3000
    assert max(w.posts) > 3000                # ids have holes: deleted posts never existed for us
    assert report.added == 3000 and sleeps == [1.0, 5.0, 5.0]
    assert fake.methods["execute"] <= 5 and fake.methods["wall.get"] == 0
    row = next(db.query("SELECT * FROM posts WHERE external_id = '1212'"))   # 1212 = 12 * 101
    item = w.posts[1212]
    assert row["community"] == "bugurt_test" and row["text"] == item["text"]
    assert (row["likes"], row["reposts"], row["views"], row["comments"]) == (
        item["likes"]["count"], item["reposts"]["count"], item["views"]["count"], item["comments"]["count"])
    assert row["is_ad"] == 1 and row["has_attachments"] == 0 and row["date"].endswith("+00:00")
    assert next(db.query("SELECT is_repost FROM posts WHERE external_id = '1236'"))["is_repost"] == 1
    assert next(db.query("SELECT has_attachments FROM posts WHERE external_id = '1211'"))["has_attachments"] == 1
    assert next(db.query("SELECT is_pinned FROM posts WHERE external_id = '1200'"))["is_pinned"] == 1


def test_script_has_at_most_25_wall_get_calls():
    script = wall_script(42, [0, 99, 198])
    assert script.count("API.wall.get(") == 3 and '"owner_id":-42' in script
    with pytest.raises(ValueError):
        wall_script(42, list(range(26)))


def test_second_run_fetches_only_new_posts_and_refreshes_recent_ones(db):
    w = wall(3000)
    fake = FakeVk(w)
    run(db, fake)
    before = fake.requests
    for _ in range(30):
        w.publish("НОВЫЙ\n@\nПОСТ\n@\nТУТ")
    newest = max(w.posts)
    w.posts[newest - 40]["likes"]["count"] = 9999   # an older, recent post gained likes
    report = run(db, fake, refresh_days=3)
    assert report.added == 30 and fake.requests - before == 2   # groups.getById + one execute
    assert sorted(stored(db)) == sorted(w.posts)
    likes = db.execute("SELECT likes FROM posts WHERE external_id = ?", [str(newest - 40)]).fetchone()[0]
    assert likes == 9999
    assert run(db, fake).added == 0


def test_interrupted_scrape_resumes_without_duplicates_or_holes(db):
    w = wall(6000)
    fake = FakeVk(w)
    fake.fail_at = 3                            # the connection drops on the second execute
    with pytest.raises(CorpusError, match="run again to continue"):
        run(db, fake, calls_per_execute=10)
    partial = len(stored(db))
    assert 0 < partial < 6000
    # meanwhile: new posts on top, and deleted posts above the resume point (offsets move up)
    for _ in range(120):
        w.publish("СВЕЖИЙ\n@\nПОСТ\n@\nДА")
    for post_id in sorted(w.posts, reverse=True)[200:330]:
        del w.posts[post_id]
    fake.fail_at = None
    report = run(db, fake, calls_per_execute=10)
    assert report.groups[0].resumed
    ids = stored(db)
    assert len(ids) == len(set(ids))
    assert set(w.posts) <= set(ids)            # no holes (deleted posts stay stored: they were read)


def test_posts_deleted_during_a_scrape_leave_no_hole(db):
    w = wall(5000)
    fake = FakeVk(w)

    def delete_some(fake_vk, number):
        if number == 3:                        # between the first and the second execute
            for post_id in sorted(w.posts, reverse=True)[100:400]:
                del w.posts[post_id]

    fake.before_request = delete_some
    run(db, fake, calls_per_execute=5)
    assert set(w.posts) <= set(stored(db))


def test_gives_up_after_the_wait_cap_with_a_clear_message(db):
    fake = FakeVk(wall(500))
    fake.errors = {n: 29 for n in range(2, 50)}
    sleeps = []
    with pytest.raises(CorpusError, match=r"error 29 .*gave up after waiting 90 s.*max_wait_seconds = 100"):
        run(db, fake, max_wait_seconds=100, sleeps=sleeps)
    assert sum(sleeps) <= 100


@pytest.mark.parametrize("setup, groups, token, message", [
    (lambda w: None, ["no_such_group"], GOOD_TOKEN, "unknown VK community 'no_such_group'"),
    (lambda w: setattr(w, "is_closed", 1), ["bugurt_test"], GOOD_TOKEN, "is closed"),
    (lambda w: setattr(w, "is_closed", 2), ["bugurt_test"], GOOD_TOKEN, "is private"),
    (lambda w: setattr(w, "wall_error", 15), ["bugurt_test"], GOOD_TOKEN, "closed or private .*error 15"),
    (lambda w: setattr(w, "wall_error", 30), ["bugurt_test"], GOOD_TOKEN, "closed or private .*error 30"),
    (lambda w: None, ["bugurt_test"], "expired", "rejected the token \\(error 5"),
    (lambda w: None, ["bugurt_test"], "", "no VK token"),
    (lambda w: None, [], GOOD_TOKEN, "no VK community given"),
    (lambda w: None, ["bad name!"], GOOD_TOKEN, "not a VK community short name"),
])
def test_bad_input_gives_one_line_errors(db, setup, groups, token, message):
    w = wall(50)
    setup(w)
    with pytest.raises(CorpusError, match=message) as info:
        run(db, FakeVk(w), groups=groups, token=token)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("closed", [1, 2])
def test_a_closed_community_the_tokens_user_is_a_member_of_is_scraped(db, closed):
    """A closed or private community's wall is read by its members: the scrape refused it as
    'cannot be read without membership' whatever groups.getById said of the token's user."""
    w = wall(150, is_closed=closed, is_member=True)
    assert run(db, FakeVk(w)).added == 150 and sorted(stored(db)) == sorted(w.posts)


def test_a_community_that_changed_its_short_name_keeps_its_posts_once(db):
    """The posts are stored under the community's short name (posts.community); after VK renamed it
    the refresh window's posts were stored again under the new name: each one twice in the corpus
    and counted as new posts."""
    w = wall(300)
    fake = FakeVk(w)
    run(db, fake)
    w.screen_name = "bugurt_renamed"
    w.publish("НОВЫЙ ПОСТ\n@\nПОСЛЕ ПЕРЕИМЕНОВАНИЯ")
    report = run(db, fake, groups=["42"], refresh_days=30)
    assert report.added == 1 and report.groups[0].refreshed > 0
    assert sorted(stored(db)) == sorted(w.posts)


def test_ids_and_urls_resolve_to_the_same_community(db):
    fake = FakeVk(wall(150))
    for key in ("42", "-42", "club42", "https://vk.com/bugurt_test"):
        assert run(db, fake, groups=[key]).groups[0].community == "bugurt_test"


def test_scrape_settings_duck_types_the_vk_section(db):
    from bot.secrets import Secret
    from bot.config_sections import VkSettings

    fake = FakeVk(wall(300))
    settings = VkSettings(token=Secret(GOOD_TOKEN), groups=["bugurt_test"], requests_per_second=1000.0)
    report = scrape_settings(db, settings, progress=False, session=fake.session())
    assert report.added == 300 and "bugurt_test (id 42): 300 new posts" in report.lines()[0]


class VirtualClock:
    """Stands in for the `time` module vk_api paces with: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def test_pacing_stays_under_the_configured_rate(db, monkeypatch):
    import vk_api.vk_api

    clock = VirtualClock()
    monkeypatch.setattr(vk_api.vk_api, "time", clock)
    fake = FakeVk(wall(1000))
    sent_at: list[float] = []
    handle = fake.handle

    def stamped(method, params):
        sent_at.append(clock.now)
        return handle(method, params)

    monkeypatch.setattr(fake, "handle", stamped)
    run(db, fake, requests_per_second=20, calls_per_execute=1)
    assert fake.requests == 12                      # groups.getById + 11 pages of 99 new posts
    gaps = [later - earlier for earlier, later in zip(sent_at, sent_at[1:])]
    assert len(gaps) == 11 and min(gaps) >= 1 / 20 - 1e-9   # never two requests closer than 1/20 s


def test_half_an_emoji_in_a_post_is_dropped_not_the_scrape(db):
    """A wall post whose text holds a lone surrogate (half an emoji, as VK's JSON may escape it:
    "\\ud83d"): the scrape stored nothing past that batch (UnicodeEncodeError: surrogates not
    allowed, a traceback at every run, which resumed at the same batch). The half is dropped, whole
    emojis stay."""
    w = wall(150)
    w.posts[3]["text"] = "БУГУРТ ПРО ЭМОДЗИ \ud83d\n@\nИ ЦЕЛЫЙ 😺 \udc00КОНЕЦ"
    report = run(db, FakeVk(w))
    assert report.added == 150
    (text,) = [r[0] for r in db.execute("SELECT text FROM posts WHERE external_id = '3'")]
    assert text == "БУГУРТ ПРО ЭМОДЗИ \n@\nИ ЦЕЛЫЙ 😺 КОНЕЦ"


def test_a_recent_post_edited_on_the_wall_is_stored_and_cleaned_as_edited(db):
    """The refresh re-reads the last refresh_days days for their counts: a post whose text its
    community fixed meanwhile kept the text first scraped (and the model learned the old one)."""
    from corpus.cleaning import clean_corpus
    from corpus.store.posts import kept_clean_texts
    from corpus.store.shingles import longest_shared_run

    w = wall(200)
    fake = FakeVk(w)
    run(db, fake)
    clean_corpus(db)
    newest = max(w.posts)
    w.posts[newest]["text"] = "ПРИХОДИШЬ НА РАБОТУ\n@\nА ТАМ ВСЕ УЖЕ ИСПРАВИЛИ ОПЕЧАТКИ В ТЕКСТЕ ПОСТА\n@\nКОНЕЦ"
    report = run(db, fake, refresh_days=3)
    assert report.added == 0 and stored(db).count(newest) == 1
    clean_corpus(db, only_new=True)
    texts = dict(kept_clean_texts(db))
    post_id = db.execute("SELECT id FROM posts WHERE external_id = ?", [str(newest)]).fetchone()[0]
    assert texts[post_id] == w.posts[newest]["text"]
    assert longest_shared_run(db, w.posts[newest]["text"]) == (len(texts[post_id]), post_id)  # the near-copy index


@pytest.mark.parametrize("setup, first", [
    (lambda w: None, "no_such_group"),                              # a typo, or a community since deleted
    (lambda w: setattr(w, "is_closed", 1), "closed_one"),
    (lambda w: setattr(w, "wall_error", 15), "closed_one"),
])
def test_a_community_that_cannot_be_read_is_skipped_and_the_others_after_it_are_scraped(db, setup, first):
    closed = FakeWall(7, "closed_one")
    closed.generate(20)
    setup(closed)
    good = wall(50)
    report = run(db, FakeVk(closed, good), groups=(first, "bugurt_test"))
    assert sorted(stored(db)) == sorted(good.posts) and report.added == 50
    (failed,) = report.failed
    assert first in failed and "\n" not in failed
    assert any(first in line for line in report.lines())


def test_an_execute_whose_response_is_too_big_is_read_in_smaller_batches(db):
    """VK refuses an execute whose answer is too big (error 13, long posts): the same batch was asked
    at every run, the scrape stopped there with 'VK error 13' for good; now the batch is halved."""
    w = wall(3000)
    fake = FakeVk(w)
    fake.execute_max_posts = 1000          # 25 pages of 100 posts are too many; 6 are not
    report = run(db, fake)
    assert sorted(stored(db)) == sorted(w.posts) and report.added == 3000
    assert [code for _, code in fake.refused] == [13, 13]      # 25 calls, then 12, then 6 from there on
    fake.execute_max_posts = 50            # not even one page of 100: one line, as any VK error
    w.publish("НОВЫЙ\n@\nПОСТ")
    with pytest.raises(CorpusError, match="VK error 13 .*response size is too big"):
        run(db, fake)



def test_posts_vk_leaves_out_of_a_page_in_the_middle_of_the_wall_stop_no_scrape(db):
    """A wall.get page shorter than 100 although the wall goes on (VK leaves out posts it counts):
    the scrape took it for the wall's end, marked the wall read, and the older posts were never
    scraped, not at the next runs either; a left-out post where two pages overlap looked like posts
    deleted meanwhile, and the scrape stepped back until it gave up."""
    w = wall(3000)
    ordered = [item["id"] for item in w.ordered()]
    w.hidden = {ordered[99], ordered[198], ordered[500], *ordered[1000:1010], *ordered[2400:2600]}
    fake = FakeVk(w)
    report = run(db, fake, calls_per_execute=5)
    assert sorted(stored(db)) == sorted(set(w.posts) - w.hidden) and report.added == 3000 - len(w.hidden)
    for _ in range(5):
        w.publish("НОВЫЙ\n@\nПОСТ")
    assert run(db, fake, calls_per_execute=5).added == 5


def test_a_first_scrape_interrupted_many_times_while_posts_are_deleted_still_finishes(db):
    """Each resumed run of a long first scrape (a captcha, the rate-limit cap, a dropped connection)
    found posts deleted since the last one and stepped back once: the step backs added up over the
    runs, and from the hundredth run on every run stopped with 'changes faster than it can be read;
    run again later', for good. The cap counts one run's step backs."""
    w = wall(12000)
    fake = FakeVk(w)
    for _ in range(102):
        fake.fail_at = fake.requests + 4      # groups.getById, a step back, one page further, then the drop
        with pytest.raises(CorpusError, match="run again to continue"):
            run(db, fake, calls_per_execute=1)
        del w.posts[max(w.posts)]             # a moderator deletes the newest post meanwhile
    fake.fail_at = None
    run(db, fake, calls_per_execute=5)
    assert set(w.posts) <= set(stored(db))


def _wall_changing_faster_than_read(fake, w, monkeypatch):
    monkeypatch.setattr("corpus.vk.MAX_STEP_BACKS", 1)
    fake.before_request = lambda fake, number: w.posts.pop(max(w.posts)) if number > 2 else None


@pytest.mark.parametrize("setup, message", [
    (lambda fake, w, mp: setattr(w, "wall_error", 1000), "VK error 1000 for community 'first_one'"),  # not known
    (lambda fake, w, mp: setattr(fake, "execute_max_posts", 60), "VK error 13 for community 'first_one'"),
    (_wall_changing_faster_than_read, "'first_one' changes faster than it can be read"),
])
def test_a_community_whose_wall_vk_fails_to_give_is_skipped_and_the_others_after_it_are_scraped(
        db, monkeypatch, setup, message):
    """A VK error of one community's wall (error 13 even at one page per request, a code not known,
    a wall that changes faster than it is read) stopped the scrape of every community after it in
    vk.groups, at every run: it is skipped, named, and the others are read."""
    first = FakeWall(7, "first_one")
    first.generate(300)
    good = wall(50)
    fake = FakeVk(first, good)
    setup(fake, first, monkeypatch)
    report = run(db, fake, groups=("first_one", "bugurt_test"), calls_per_execute=1)
    scraped = db.execute("SELECT external_id FROM posts WHERE community = 'bugurt_test'").fetchall()
    assert len(scraped) == 50 and [g.community for g in report.groups] == ["bugurt_test"]
    (failed,) = report.failed
    assert message in failed and "\n" not in failed


@pytest.mark.parametrize("errors, token, message", [
    ({3: 14}, GOOD_TOKEN, "captcha"),                  # the first community's first wall.get
    ({}, "expired", "rejected the token"),
])
def test_a_refused_token_or_a_captcha_still_stops_the_scrape_of_every_community(db, errors, token, message):
    first, good = FakeWall(7, "first_one"), wall(50)
    first.generate(20)
    fake = FakeVk(first, good)
    fake.errors = errors
    with pytest.raises(CorpusError, match=message):
        run(db, fake, groups=("first_one", "bugurt_test"), token=token)
    assert not db.execute("SELECT 1 FROM posts WHERE community = 'bugurt_test'").fetchall()


def test_posts_stored_from_a_community_before_it_failed_are_counted_and_said(db, monkeypatch):
    """A community that failed part-way (its first page stored, then the wall changed faster than it
    was read) was reported 'not scraped' and its stored posts left out of the total: the operator read
    '0 new posts' of a corpus that grew."""
    first = FakeWall(7, "first_one")
    first.generate(300)
    fake = FakeVk(first, wall(50))
    _wall_changing_faster_than_read(fake, first, monkeypatch)
    report = run(db, fake, groups=("first_one", "bugurt_test"), calls_per_execute=1)
    kept = db.execute("SELECT count(*) FROM posts WHERE community = 'first_one'").fetchone()[0]
    assert kept >= 100 and report.added == kept + 50
    (failed,) = report.failed
    assert f"{kept} new posts stored before it stopped" in failed
    assert f"total: {kept + 50} new posts" in report.lines()[-1]
