"""The thin slice through every layer, as a user runs it: the real `buhurt` CLI in a subprocess,
a real SQLite file, real torch training on tiny data, and the service's local channel."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import pytest
import torch

from tests.helpers import PATIENCE, ROOT, varied_posts

POSTS = varied_posts(80)

TINY_CONFIG = """
[paths]
data_dir = "{data}"
[corpus]
seed_with_sample = false
[startup]
use_bundled_model = false
[model]
wordvec_size = 16
rnn_size = 32
num_layers = 1
[train]
batch_size = 8
seq_length = 32
max_epochs = 3
max_minutes = 0.5
[pool]
channel_size = 2
subscriber_size = 2
batch_size = 4
[sample]
max_length = 120
"""


def buhurt(*args, cwd, check=True, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    done = subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=PATIENCE)
    if check and done.returncode != 0:
        raise AssertionError(f"buhurt {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture
def workdir(tmp_path):
    corpus = tmp_path / "posts.txt"
    corpus.write_text("\n\n".join(POSTS + POSTS[:10]) + "\n", encoding="utf-8")
    (tmp_path / "config.toml").write_text(TINY_CONFIG.format(data=tmp_path / "data"), encoding="utf-8")
    return tmp_path


def test_import_export_preprocess_train_sample(workdir):
    out = buhurt("corpus", "import", "posts.txt", cwd=workdir).stdout
    assert f"{len(POSTS)} posts added, 10 already present" in out
    assert "0 posts added" in buhurt("corpus", "import", "posts.txt", cwd=workdir).stdout

    buhurt("corpus", "export", cwd=workdir)
    text = (workdir / "data/train/corpus.txt").read_text(encoding="utf-8")
    posts = text.strip("\n").split("\n\n")
    # each post at most once, separated by the blank-line gap (cleaning may drop a near-duplicate)
    assert len(set(posts)) == len(posts) and set(posts) <= set(POSTS) and len(posts) >= len(POSTS) - 5
    manifest = json.loads((workdir / "data/train/corpus.txt.manifest.json").read_text(encoding="utf-8"))
    assert len(manifest["post_ids"]) == len(posts)

    buhurt("preprocess", cwd=workdir)
    with h5py.File(workdir / "data/train/corpus.h5") as h5:
        assert set(h5) == {"train", "val", "test"}
        assert sum(h5[name].shape[0] for name in h5) == len(text)

    buhurt("train", "--wordvec-size", "16", "--rnn-size", "32", "--num-layers", "1", "--batch-size", "4",
           "--seq-length", "16", "--max-iterations", "60", "--checkpoint-every", "20", cwd=workdir)
    best = workdir / "data/checkpoints/best.pt"
    payload = torch.load(best, weights_only=True)
    assert payload["idx_to_token"] and (workdir / "data/checkpoints/best.json").is_file()

    sampled = buhurt("sample", "--checkpoint", str(best), "--num", "3", "--seed", "5", "--length", "200",
                     cwd=workdir).stdout
    posts = [p for p in sampled.split("\n\n") if p.strip()]
    assert len(posts) == 3 and all(len(p) <= 200 for p in posts)
    again = buhurt("sample", "--checkpoint", str(best), "--num", "3", "--seed", "5", "--length", "200",
                   cwd=workdir).stdout
    assert again == sampled


def test_run_once_trains_a_model_and_publishes_to_the_local_channel(workdir):
    buhurt("corpus", "import", "posts.txt", cwd=workdir)
    done = buhurt("run", "--once", cwd=workdir)
    log = done.stderr
    assert "no Telegram token configured" in log and "auto-approved" in log
    assert "===== local channel, post 1 =====" in done.stdout

    from corpus.db import open_db

    db = open_db(workdir / "data/buhurt.sqlite3")
    published = list(db.query("SELECT * FROM publications"))
    assert [(p["network"], p["status"], p["message_id"]) for p in published] == [("local", "sent", "1")]
    draft = db["drafts"].get(published[0]["draft_id"])
    assert draft["status"] == "published" and draft["text"] in done.stdout
    assert [a["action"] for a in db.query("SELECT action FROM moderation_actions WHERE draft_id = ?",
                                          [draft["id"]])] == ["auto_approve"]
    assert db.execute("SELECT count(*) FROM model_versions WHERE status = 'active'").fetchone()[0] == 1

    second = buhurt("run", "--once", cwd=workdir)
    assert "===== local channel, post 2 =====" in second.stdout
    assert "no model yet" not in second.stderr  # the trained model was kept
