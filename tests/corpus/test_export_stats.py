"""The training text (cleaning first, popularity weighting) and corpus stats."""
from __future__ import annotations

import json

from corpus.rules import CleanOptions
from corpus.export import export_training_text
from corpus.popularity import PopularityWeighting, weights
from corpus.stats import corpus_stats, write_histogram
from corpus.store.posts import add_posts
from tests.helpers import TINY_POSTS


def add(db, texts, **fields):
    add_posts(db, [{"source": "vk", "community": fields.get("community", "g"), "external_id": str(i),
                    "text": t, **{k: v[i] if isinstance(v, list) else v for k, v in fields.items()
                                  if k != "community"}} for i, t in enumerate(texts)])


def test_export_cleans_uncleaned_posts_first(db, tmp_path):
    add(db, [*TINY_POSTS, TINY_POSTS[0].lower(), "ССЫЛКА https://x.ru\n@\nА\n@\nБ"])
    result = export_training_text(db, tmp_path / "out.txt")
    assert result.posts == len(TINY_POSTS)
    text = (tmp_path / "out.txt").read_text(encoding="utf-8")
    assert "https" not in text and text.count("\n\n") == len(TINY_POSTS)
    off = export_training_text(db, tmp_path / "o2.txt", clean=CleanOptions(enabled=False))
    assert off.posts == len(TINY_POSTS)   # already cleaned: the stored results are kept


def test_popularity_weighting_repeats_the_top_posts_of_each_community(db, tmp_path):
    posts = [{"id": i, "community": "a", "likes": i * 10, "views": 1000} for i in range(1, 11)]
    posts += [{"id": 100 + i, "community": "b", "likes": i, "views": None} for i in range(1, 5)]
    posts += [{"id": 200, "community": "c", "likes": None, "views": None}]
    assert weights(posts, PopularityWeighting(enabled=True, top_fraction=0.2, copies=3)) == {
        10: 3, 9: 3, 104: 3}
    by_views = [{"id": 1, "community": "a", "likes": 50, "views": 10_000},
                {"id": 2, "community": "a", "likes": 10, "views": 100}]
    assert weights(by_views, PopularityWeighting(enabled=True, top_fraction=0.5)) == {2: 2}
    assert weights(by_views, PopularityWeighting(enabled=True, top_fraction=0.5, normalise="median")) == {1: 2}
    assert weights(posts, PopularityWeighting()) == {}

    add(db, TINY_POSTS, likes=[1, 2, 3, 4, 100], views=1000)
    plain = export_training_text(db, tmp_path / "plain.txt")
    weighted = export_training_text(db, tmp_path / "w.txt",
                                    weighting=PopularityWeighting(enabled=True, top_fraction=0.2, copies=3))
    assert weighted.posts == plain.posts + 2
    manifest = json.loads(weighted.manifest_path.read_text(encoding="utf-8"))
    assert manifest["weighting"]["boosted_posts"] == 1 and manifest["distinct_posts"] == len(TINY_POSTS)
    top_id = db.execute("SELECT id FROM posts WHERE likes = 100").fetchone()[0]
    assert manifest["post_ids"].count(top_id) == 3
    again = export_training_text(db, tmp_path / "w2.txt",
                                 weighting=PopularityWeighting(enabled=True, top_fraction=0.2, copies=3))
    assert again.fingerprint == weighted.fingerprint


def test_stats_and_histogram(db, tmp_path):
    add(db, TINY_POSTS)
    export_training_text(db, tmp_path / "out.txt")
    stats = corpus_stats(db)
    assert stats.posts == len(TINY_POSTS) and stats.chars == sum(len(p) for p in TINY_POSTS)
    assert stats.vocabulary == len(set("".join(TINY_POSTS)))
    assert stats.line_counts == [p.count("\n") + 1 for p in TINY_POSTS]
    lines = "\n".join(stats.lines())
    assert "vocabulary:" in lines and "lines per post:" in lines and "top characters:" in lines
    png = write_histogram(stats, tmp_path / "h" / "stats.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_into_a_folder_that_cannot_be_made_is_one_line_not_a_traceback(tmp_path, capsys):
    """`corpus export -o notes.txt/corpus.txt` (a file where the folder would be) ended in
    'unexpected FileExistsError' with a traceback, exit 1."""
    from tests.helpers import run_cli

    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    posts = tmp_path / "posts.txt"
    posts.write_text("\n\n".join(TINY_POSTS) + "\n", encoding="utf-8")
    assert run_cli(capsys, "--config", str(config), "corpus", "import", str(posts))[0] == 0
    notes = tmp_path / "notes.txt"
    notes.write_text("мои заметки\n", encoding="utf-8")
    for output in (notes / "corpus.txt", notes / "deeper" / "corpus.txt"):
        code, out, err = run_cli(capsys, "--config", str(config), "corpus", "export", "-o", str(output))
        assert code == 2 and "Traceback" not in err, err
        (line,) = err.strip().splitlines()
        assert "notes.txt" in line and "folder" in line, line
    assert notes.read_text(encoding="utf-8") == "мои заметки\n"
    code, out, err = run_cli(capsys, "--config", str(config), "corpus", "export", "-o",
                             str(tmp_path / "new" / "deeper" / "corpus.txt"))
    assert code == 0 and (tmp_path / "new" / "deeper" / "corpus.txt.manifest.json").is_file(), err


def test_a_huge_gap_between_posts_is_refused_in_one_line(tmp_path, capsys):
    """--gap-lines 2000000000 (or corpus.gap_lines) built gap_lines newlines per post in memory and
    ended in 'unexpected MemoryError' with a traceback; a million wrote megabytes of blank lines."""
    from tests.helpers import run_cli

    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    posts = tmp_path / "posts.txt"
    posts.write_text("\n\n".join(TINY_POSTS) + "\n", encoding="utf-8")
    assert run_cli(capsys, "--config", str(config), "corpus", "import", str(posts))[0] == 0
    output = tmp_path / "out" / "corpus.txt"
    code, _, err = run_cli(capsys, "--config", str(config), "corpus", "export", "-o", str(output),
                           "--gap-lines", "1000000")
    assert code == 2 and "--gap-lines" in err and "Traceback" not in err, err
    huge = tmp_path / "huge.toml"
    huge.write_text(config.read_text(encoding="utf-8") + "[corpus]\ngap_lines = 1000000\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(huge), "corpus", "export", "-o", str(output))
    assert code == 2 and "Traceback" not in err, err
    (line,) = err.strip().splitlines()
    assert "corpus.gap_lines" in line and "1000000" in line, line
    assert not output.exists()
    code, _, err = run_cli(capsys, "--config", str(config), "corpus", "export", "-o", str(output),
                           "--gap-lines", "100")
    assert code == 0 and "\n" * 101 in output.read_text(encoding="utf-8"), err


def test_popularity_weighting_repeats_a_telegram_channels_most_reacted_posts(db, tmp_path):
    """A Telegram export's posts have reactions, no likes: popularity.enabled = true on a channel's
    corpus repeated nothing (boosted_posts 0), without a word; reactions are a Telegram post's likes,
    as they are for the published posts' scores."""
    from corpus.telegram_export import import_telegram_export

    messages = [{"id": i + 1, "type": "message", "date_unixtime": str(1_600_000_000 + i), "text": text,
                 "reactions": [{"type": "emoji", "count": 100 if i == 2 else i + 1, "emoji": "👍"}]}
                for i, text in enumerate(TINY_POSTS)]
    (tmp_path / "result.json").write_text(json.dumps({"name": "КАНАЛ", "type": "public_channel", "id": 5,
                                                       "messages": messages}, ensure_ascii=False), encoding="utf-8")
    import_telegram_export(db, tmp_path / "result.json")
    weighted = export_training_text(db, tmp_path / "w.txt",
                                    weighting=PopularityWeighting(enabled=True, top_fraction=0.2, copies=3))
    manifest = json.loads(weighted.manifest_path.read_text(encoding="utf-8"))
    top_id = db.execute("SELECT id FROM posts WHERE reactions = 100").fetchone()[0]
    assert manifest["weighting"]["boosted_posts"] == 1 and manifest["post_ids"].count(top_id) == 3


def test_with_cleaning_off_a_post_without_text_is_not_an_empty_post_of_the_training_text(db, tmp_path):
    """clean.enabled = false kept a photo-only message (no text) as a post of "": the training text
    got a doubled gap where it stood, and the manifest and stats counted it (length 0)."""
    add(db, [*TINY_POSTS, "", "  \n@\n  "], has_attachments=[0] * len(TINY_POSTS) + [1, 0])
    result = export_training_text(db, tmp_path / "out.txt", clean=CleanOptions(enabled=False))
    text = (tmp_path / "out.txt").read_text(encoding="utf-8")
    assert result.posts == len(TINY_POSTS) and "\n\n\n" not in text and text.count("\n\n") == len(TINY_POSTS)
    assert min(corpus_stats(db).lengths) > 0
