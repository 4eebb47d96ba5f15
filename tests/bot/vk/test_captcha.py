"""A VK captcha (error 14) with the real vk_api against the fake VK (issue 14, point 8): in a scrape
it is one line and the run resumes later; on wall.post it is a refusal (nothing was published),
never `unknown`."""
from __future__ import annotations

import asyncio

import requests

from corpus.db import open_db
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from jobs.publish import publish_draft
from tests.helpers import run_cli
from tests.fakes.fake_vk import GOOD_TOKEN, FakeVk, FakeWall
from tests.fakes.vk_wall import setup


def config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[vk]\nrequests_per_second = 1000.0\n',
                    encoding="utf-8")
    return path


def test_captcha_during_scrape_is_one_line_and_the_next_run_resumes(tmp_path, monkeypatch, capsys):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(3000)
    fake = FakeVk(wall)
    fake.errors = {3: 14}  # 1: groups.getById, 2: the first batch of pages, 3: captcha
    monkeypatch.setattr(requests, "Session", fake.session)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    code, out, err = run_cli(capsys, "--config", str(config(tmp_path)), "corpus", "scrape",
                             "--group", "bugurt_test", "--no-progress")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "captcha (error 14)" in lines[0] and "run again later" in lines[0], err
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    saved = db["posts"].count
    db.close()
    assert 0 < saved < 3000  # the first batch is kept
    code, out, err = run_cli(capsys, "--config", str(config(tmp_path)), "corpus", "scrape",
                             "--group", "bugurt_test", "--no-progress")
    assert code == 0 and "resumed an interrupted run" in out, err
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    assert db["posts"].count == 3000
    db.close()


def test_captcha_inside_execute_is_one_line(tmp_path, monkeypatch, capsys):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(300)
    fake = FakeVk(wall)
    fake.inner_errors = {2: (1, 14)}
    monkeypatch.setattr(requests, "Session", fake.session)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    code, _, err = run_cli(capsys, "--config", str(config(tmp_path)), "corpus", "scrape",
                           "--group", "bugurt_test", "--no-progress")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "captcha (error 14)" in lines[0], err


def test_captcha_on_wall_post_is_a_refusal_not_unknown(db):
    wall, fake, vk = setup()
    fake.errors = {1: 14}
    before = set(wall.posts)
    draft_id = draft_rows.add_draft(db, text="МЕМ\n@\nКАПЧА", model_version="v", temperature=0.8, seed=1,
                                    max_length=500, status="queued")
    draft = draft_rows.get_draft(db, draft_id)
    notices = []

    async def notify(text):
        notices.append(text)

    published = asyncio.run(publish_draft(db, draft, [vk.publisher], notify))
    (row,) = pubs.publications_of(db, draft["id"])
    assert not published and row["status"] == "failed" and "captcha" in row["error"]
    assert set(wall.posts) == before and "не опубликован" in notices[0]
    assert asyncio.run(publish_draft(db, draft, [vk.publisher], notify))  # retried: VK takes it now
    assert len(wall.posts) == len(before) + 1
