"""Issue 26, points 1-4: what a bad model must not do. A checkpoint with NaN or Inf weights, a
bit-flipped one (zip CRC), one of an absurd shape or without the line end in its vocabulary is
refused in one line; a model whose held-out bits/char is not finite is never active and always
loses; an active checkpoint deleted or unreadable never brings the bundled model back in silence.
Real checkpoints (the suite's tiny model), real SQLite files, the real CLI."""
from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import zipfile
from pathlib import Path

import pytest
import torch

from corpus.db import open_db
from corpus.store import model_versions as model_rows
from model.checkpoint import load_checkpoint, save_checkpoint
from model.errors import ModelError
from tests.helpers import PATIENCE, run_cli, varied_posts

run = run_cli


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A folder with a config.toml whose data_dir is ./data; the bundled model allowed (the default)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text(
        "[paths]\ndata_dir = 'data'\n[corpus]\nseed_with_sample = false\n[schedule]\nretrain = false\n"
        "[sample]\nmax_length = 60\n[pool]\nchannel_size = 1\nsubscriber_size = 0\nbatch_size = 2\n")
    return tmp_path


def saved(tiny_checkpoint: Path, path: Path, tag: str, **changes) -> Path:
    """The tiny model saved again as `path` (another version), with `changes` to its contents."""
    ck = torch.load(tiny_checkpoint, weights_only=True)
    return save_checkpoint(path, {**ck, "created_at": tag, **changes})


def with_weight(tiny_checkpoint: Path, key: str, value: float) -> dict:
    state = dict(torch.load(tiny_checkpoint, weights_only=True)["model_state"])
    tensor = state[key].clone()
    tensor.view(-1)[3] = value
    state[key] = tensor
    return state


def rows(home: Path) -> dict[str, dict]:
    db = open_db(home / "data" / "buhurt.sqlite3")
    try:
        return {r["version"]: r for r in db.query("SELECT * FROM model_versions")}
    finally:
        db.close()


def installed(home: Path, capsys, tiny_checkpoint: Path) -> dict[str, dict]:
    good = saved(tiny_checkpoint, home / "good.pt", "good")
    code, out, err = run(capsys, "models", "install", str(good), "--no-tune", "--activate")
    assert code == 0, err
    return rows(home)


def refused(home: Path, capsys, path: Path, *needles: str) -> str:
    """`models install --activate` of `path`: one line naming the file and `needles`, nothing changed."""
    before = rows(home)
    files = sorted((home / "data" / "models").iterdir())
    code, out, err = run(capsys, "models", "install", str(path), "--no-tune", "--activate")
    assert code == 2 and err.count("\n") == 1 and path.name in err, (code, out, err)
    for needle in needles:
        assert needle in err, err
    assert "Traceback" not in err
    assert rows(home) == before and sorted((home / "data" / "models").iterdir()) == files
    return err


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_weights_that_hold_nan_or_inf_are_refused(home, capsys, tiny_checkpoint, value):
    installed(home, capsys, tiny_checkpoint)
    diverged = saved(tiny_checkpoint, home / "diverged.pt", "nan",
                     model_state=with_weight(tiny_checkpoint, "rnn.weight_hh_l1", value))
    refused(home, capsys, diverged, "NaN or Inf", "rnn.weight_hh_l1", "1 of")


def test_an_active_model_with_nan_weights_fails_the_doctor(home, capsys, tiny_checkpoint):
    """What an install before this check left active: `doctor` no longer says the model loads."""
    from jobs.model_registry import install_checkpoint

    diverged = saved(tiny_checkpoint, home / "diverged.pt", "nan",
                     model_state=with_weight(tiny_checkpoint, "embed.weight", math.nan))
    installed(home, capsys, tiny_checkpoint)
    db = open_db(home / "data" / "buhurt.sqlite3")
    try:
        model_rows.promote(db, install_checkpoint(db, diverged, home / "data" / "models", val_bpc=None))
    finally:
        db.close()
    code, out, err = run(capsys, "doctor")
    failed = [line for line in out.splitlines() if line.startswith("FAIL  model:")]
    assert code == 1 and failed and "NaN or Inf" in failed[0] and "embed.weight" in failed[0], out + err


def test_a_model_scoring_a_bits_per_char_that_is_not_finite_is_never_installed(home, capsys, tiny_checkpoint):
    installed(home, capsys, tiny_checkpoint)
    state = dict(torch.load(tiny_checkpoint, weights_only=True)["model_state"])
    bias = torch.full_like(state["head.bias"], -3e38)     # finite weights, but a known character gets
    bias[0] = 3e38                                        # probability 0: an infinite loss
    state["head.bias"] = bias
    extreme = saved(tiny_checkpoint, home / "extreme.pt", "inf", model_state=state)
    (home / "val.txt").write_text("\n\n".join(varied_posts(5)), encoding="utf-8")
    before = rows(home)
    code, out, err = run(capsys, "models", "install", str(extreme), "--no-tune", "--activate", "--text", "val.txt")
    assert code == 2 and err.count("\n") == 1 and "inf bits/char" in err and "not a finite number" in err, err
    assert rows(home) == before


def test_promotion_always_goes_against_a_bits_per_char_that_is_not_finite(tmp_path):
    from jobs.retrain import RetrainPlan, promotion_decision

    plan = RetrainPlan(train_txt=tmp_path / "t.txt", train_h5=tmp_path / "t.h5", train_json=tmp_path / "t.json",
                       checkpoint_dir=tmp_path / "ck", models_dir=tmp_path / "models")
    for bad in (math.nan, math.inf):
        promote, why = promotion_decision(bad, 2.5, 0.9, 0.9, plan)
        assert not promote and "not a finite number" in why
        assert promotion_decision(2.5, bad, 0.5, 0.9, plan) == (True, "")   # a broken active model always loses
    assert not promotion_decision(math.nan, math.nan, None, None, plan)[0]


def test_the_nightly_retrain_replaces_an_active_model_with_nan_weights(db, tmp_path, tiny_checkpoint, caplog):
    """An active model whose weights went NaN (installed before the check existed) is replaced by the
    next retrain; a diverged candidate is recorded as rejected and can never be activated."""
    from corpus.store.posts import add_posts
    from jobs.errors import JobError
    from jobs.model_registry import activate_version, install_checkpoint
    from jobs.retrain import RetrainPlan, retrain
    from model.files import file_version
    from model.train_config import TrainConfig

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(60)])
    nan_state = with_weight(tiny_checkpoint, "head.weight", math.nan)
    broken = saved(tiny_checkpoint, tmp_path / "broken.pt", "nan", model_state=nan_state)
    bad_version = install_checkpoint(db, broken, tmp_path / "models", val_bpc=None)   # as an older install did
    model_rows.promote(db, bad_version)
    plan = RetrainPlan(train_txt=tmp_path / "t.txt", train_h5=tmp_path / "t.h5", train_json=tmp_path / "t.json",
                       checkpoint_dir=tmp_path / "ck", models_dir=tmp_path / "models", readability_drafts=2,
                       sample_length=40, training=TrainConfig.torch_rnn_preset(progress=False))
    written = []

    def run_training(cfg, state=None):   # what the run leaves is what is tested: the tiny model, or a diverged one
        written.append(saved(tiny_checkpoint, Path(cfg.checkpoint_dir) / "best.pt", str(len(written)),
                             **({"model_state": state} if state is not None else {})))

    with caplog.at_level(logging.WARNING):
        result = retrain(db, plan, run_training, manual=True)
    assert result.promoted and not result.warm and math.isinf(result.active_bpc), result.reason
    assert model_rows.active_model(db)["version"] == result.candidate_version != bad_version
    assert "the active model cannot be used" in caplog.text and "NaN or Inf" in caplog.text

    diverged = retrain(db, plan, lambda cfg: run_training(cfg, nan_state), manual=True)
    assert not diverged.promoted and "not a finite number" in diverged.reason
    assert model_rows.active_model(db)["version"] == result.candidate_version
    nan_version = file_version(written[-1])
    with pytest.raises(JobError, match="not a finite number"):
        activate_version(db, nan_version, tmp_path / "models")
    assert model_rows.active_model(db)["version"] == result.candidate_version


def test_a_retrain_from_scratch_replaces_an_active_model_with_nan_weights(db, tmp_path, tiny_checkpoint, caplog):
    """`buhurt retrain --from-scratch`, what an operator runs when the active model went bad: the
    active model that cannot be loaded loses to the finite candidate, as in a warm night; it was
    only found out when it was scored, after the training, and the run ended in its ModelError."""
    from corpus.store.posts import add_posts
    from jobs.model_registry import install_checkpoint
    from jobs.retrain import RetrainPlan, retrain
    from model.train_config import TrainConfig

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(60)])
    broken = saved(tiny_checkpoint, tmp_path / "broken.pt", "nan",
                   model_state=with_weight(tiny_checkpoint, "rnn.weight_hh_l0", math.nan))
    bad_version = install_checkpoint(db, broken, tmp_path / "models", val_bpc=None)
    model_rows.promote(db, bad_version)
    plan = RetrainPlan(train_txt=tmp_path / "t.txt", train_h5=tmp_path / "t.h5", train_json=tmp_path / "t.json",
                       checkpoint_dir=tmp_path / "ck", models_dir=tmp_path / "models", readability_drafts=2,
                       sample_length=40, training=TrainConfig.torch_rnn_preset(progress=False))

    def run_training(cfg):
        assert cfg.init_from is None
        saved(tiny_checkpoint, Path(cfg.checkpoint_dir) / "best.pt", "fresh")

    with caplog.at_level(logging.WARNING):
        result = retrain(db, plan, run_training, manual=True, from_scratch=True)
    assert result.promoted and not result.warm and math.isinf(result.active_bpc), result.reason
    assert model_rows.active_model(db)["version"] == result.candidate_version != bad_version
    assert "the active model cannot be used" in caplog.text and "NaN or Inf" in caplog.text


def test_a_bit_flipped_checkpoint_is_refused_naming_the_member(home, capsys, tiny_checkpoint):
    installed(home, capsys, tiny_checkpoint)
    flipped = saved(tiny_checkpoint, home / "flipped.pt", "crc")
    with zipfile.ZipFile(flipped) as archive:
        member = max(archive.infolist(), key=lambda info: info.file_size)   # the largest tensor's bytes
    with open(flipped, "r+b") as handle:   # one bit inside the member's data, past its local header
        handle.seek(member.header_offset + 26)
        name_len, extra_len = (int.from_bytes(handle.read(2), "little") for _ in range(2))
        at = member.header_offset + 30 + name_len + extra_len + member.file_size // 2
        handle.seek(at)
        byte = handle.read(1)[0]
        handle.seek(at)
        handle.write(bytes([byte ^ 0x04]))
    with pytest.raises(ModelError, match="CRC"):
        load_checkpoint(flipped)
    refused(home, capsys, flipped, "damaged", member.filename, "CRC")


@pytest.mark.parametrize("change, needle", [
    ({"num_layers": 10**6}, "model_config.num_layers=1000000"),
    ({"rnn_size": 10**9}, "rnn_size=1000000000"),
    ({"wordvec_size": 0}, "model_config.wordvec_size=0"),
    ({"vocab_size": 10**7}, "model_config.vocab_size=10000000"),
    ({"model_type": "transformer"}, "model_config.model_type='transformer'"),
])
def test_an_absurd_shape_is_refused_before_anything_is_built(home, capsys, tiny_checkpoint, change, needle):
    installed(home, capsys, tiny_checkpoint)
    ck = torch.load(tiny_checkpoint, weights_only=True)
    absurd = saved(tiny_checkpoint, home / "absurd.pt", "shape", model_config={**ck["model_config"], **change})
    started = time.monotonic()
    with pytest.raises(ModelError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        load_checkpoint(absurd)          # plain numbers checked before any module (or tensor of it) exists
    assert time.monotonic() - started < PATIENCE   # a bound on a hang, never a speed claim
    refused(home, capsys, absurd, needle)


def test_a_vocabulary_without_the_line_end_is_refused(home, capsys, tiny_checkpoint):
    installed(home, capsys, tiny_checkpoint)
    tokens = list(torch.load(tiny_checkpoint, weights_only=True)["idx_to_token"])
    tokens[tokens.index("\n")] = "\x00"
    no_newline = saved(tiny_checkpoint, home / "no-newline.pt", "nl", idx_to_token=tokens)
    refused(home, capsys, no_newline, "has no line end")


def listen(caplog) -> None:
    """caplog's handler back on the root logger: the CLI's logging set-up (basicConfig force=True) took it off."""
    if caplog.handler not in logging.getLogger().handlers:
        logging.getLogger().addHandler(caplog.handler)


def two_versions(home: Path, capsys, tiny_checkpoint: Path) -> tuple[str, str]:
    """Two installed versions, the second active (the first retired): (earlier, active)."""
    versions = []
    for tag in ("earlier", "active"):
        path = saved(tiny_checkpoint, home / f"{tag}.pt", tag)
        code, out, err = run(capsys, "models", "install", str(path), "--no-tune", "--activate")
        assert code == 0, err
        versions.append(out.split()[2])
    return versions[0], versions[1]


def test_a_deleted_active_checkpoint_at_start_never_brings_the_bundled_model_back(home, capsys, tiny_checkpoint,
                                                                                 caplog):
    from bot.app import build_services
    from bot.config import load_settings
    from jobs.model_registry import bundled_checkpoint
    from model.files import file_version

    earlier, active = two_versions(home, capsys, tiny_checkpoint)
    gone = Path("data", "models", f"{active}.pt")     # as the database records it (data_dir is relative)
    gone.unlink()
    code, out, err = run(capsys, "doctor")
    failed = [line for line in out.splitlines() if line.startswith("FAIL  model:")]
    assert code == 1 and len(failed) == 1 and str(gone) in failed[0] and "missing" in failed[0], out + err

    settings = load_settings(home / "config.toml")
    listen(caplog)
    with caplog.at_level(logging.WARNING):
        services = build_services(settings)
    try:
        bundled = bundled_checkpoint()
        assert services.holder.version == earlier
        assert bundled is None or services.holder.version != file_version(bundled)
        started = [r for r in caplog.records if r.levelno == logging.WARNING and str(gone) in r.getMessage()]
        assert started and earlier in started[0].getMessage(), caplog.text
        for _ in range(2):   # said at WARNING at each pool run
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                asyncio.run(services.service.fill_pools())
            said = [r for r in caplog.records if r.levelno == logging.WARNING and active in r.getMessage()]
            assert said and str(gone) in said[0].getMessage() and earlier in said[0].getMessage(), caplog.text
            assert services.holder.version == earlier
    finally:
        services.db.close()


@pytest.mark.parametrize("how", ["mode 000", "a directory in its place"])
def test_an_unreadable_active_checkpoint_fails_the_doctor(home, capsys, tiny_checkpoint, how):
    if how == "mode 000" and os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode")
    _, active = two_versions(home, capsys, tiny_checkpoint)
    locked = Path("data", "models", f"{active}.pt")
    if how == "mode 000":
        locked.chmod(0)
    else:
        locked.unlink()
        locked.mkdir()
    try:
        code, out, err = run(capsys, "doctor")
    finally:
        if how == "mode 000":
            locked.chmod(0o644)
    failed = [line for line in out.splitlines() if line.startswith("FAIL  model:")]
    assert code == 1 and failed and str(locked) in failed[0], out + err
    assert ("unreadable" if how == "mode 000" else "not a regular file") in failed[0]


def test_a_damaged_active_checkpoint_at_start_falls_back_to_the_earlier_version(home, capsys, tiny_checkpoint,
                                                                                caplog):
    from bot.app import build_services
    from bot.config import load_settings

    earlier, active = two_versions(home, capsys, tiny_checkpoint)
    damaged = Path("data", "models", f"{active}.pt")
    damaged.write_bytes(damaged.read_bytes()[:1000])     # cut short: it exists, and cannot be loaded
    code, out, _ = run(capsys, "doctor")
    assert code == 1 and any(line.startswith("FAIL  model:") and damaged.name in line for line in out.splitlines())
    listen(caplog)
    with caplog.at_level(logging.WARNING):
        services = build_services(load_settings(home / "config.toml"))
    try:
        # its bytes are no longer its version: said so before torch reads it
        assert services.holder.version == earlier and f"{active}'s checkpoint {damaged} is version" in caplog.text
    finally:
        services.db.close()


def test_an_active_checkpoint_deleted_under_the_running_service_is_warned_about(db, tmp_path, tiny_checkpoint,
                                                                                caplog):
    from jobs.model_registry import install_checkpoint
    from jobs.moderation import AutoApprove

    models = tmp_path / "models"
    version = install_checkpoint(db, tiny_checkpoint, models, val_bpc=None)
    model_rows.promote(db, version)
    service = small_service(db, models / f"{version}.pt", AutoApprove())
    with caplog.at_level(logging.WARNING):
        asyncio.run(service.fill_pools())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    (models / f"{version}.pt").unlink()
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            asyncio.run(service.fill_pools())
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(str(models / f"{version}.pt") in w and "missing" in w and "still generating" in w
                   for w in warned), caplog.text
        assert service.holder.version == version


def test_an_active_checkpoint_whose_bytes_changed_is_not_generated_with_under_its_version(home, capsys,
                                                                                          tiny_checkpoint, caplog):
    """data/models/<version>.pt rewritten in place with another good checkpoint (an older release's
    `buhurt lexicon` in place, a copy over it): doctor says so, and the service generates with the
    version active before it, never under a version that was never registered."""
    from bot.app import build_services
    from bot.config import load_settings
    from model.files import file_version

    earlier, active = two_versions(home, capsys, tiny_checkpoint)
    changed = Path("data", "models", f"{active}.pt")
    saved(tiny_checkpoint, changed, "rewritten in place")
    stranger = file_version(changed)
    assert stranger not in (earlier, active)
    code, out, err = run(capsys, "doctor")
    failed = [line for line in out.splitlines() if line.startswith("FAIL  model:")]
    assert code == 1 and len(failed) == 1 and str(changed) in failed[0] and stranger in failed[0], out + err

    listen(caplog)
    with caplog.at_level(logging.WARNING):
        services = build_services(load_settings(home / "config.toml"))
    try:
        assert services.holder.version == earlier, caplog.text
        assert any(str(changed) in r.getMessage() and earlier in r.getMessage() for r in caplog.records
                   if r.levelno == logging.WARNING), caplog.text
        for _ in range(2):   # the pool runs keep to it, saying why
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                asyncio.run(services.service.fill_pools())
            assert services.holder.version == earlier
            assert any(str(changed) in r.getMessage() for r in caplog.records
                       if r.levelno == logging.WARNING), caplog.text
        drafted = {r["model_version"] for r in services.db.query("SELECT model_version FROM drafts")}
        assert drafted == {earlier}
    finally:
        services.db.close()


def test_activating_a_version_whose_file_bytes_changed_is_refused(home, capsys, tiny_checkpoint):
    earlier, active = two_versions(home, capsys, tiny_checkpoint)
    changed = Path("data", "models", f"{earlier}.pt")
    saved(tiny_checkpoint, changed, "rewritten in place")
    before = rows(home)
    code, out, err = run(capsys, "models", "activate", earlier)
    assert code == 2 and err.count("\n") == 1 and str(changed) in err and "changed" in err, (code, out, err)
    assert rows(home) == before and rows(home)[active]["status"] == "active"


def test_a_data_folder_that_moved_keeps_its_installed_models(home, capsys, tiny_checkpoint, monkeypatch, caplog):
    """data_dir = 'data' under /srv/buhurt (systemd's WorkingDirectory), then the same folder as
    Docker's /data volume (data_dir = '/data', another working directory): model_versions recorded
    'data/models/<version>.pt', which no longer names a file there; the models came along in
    <data_dir>/models and are used from there, never reported missing."""
    from bot.app import build_services
    from bot.config import load_settings

    earlier, active = two_versions(home, capsys, tiny_checkpoint)
    assert rows(home)[active]["path"] == str(Path("data", "models", f"{active}.pt"))
    moved = home / "docker"
    moved.mkdir()
    (home / "data").rename(moved / "volume")
    (moved / "config.toml").write_text((home / "config.toml").read_text().replace(
        "data_dir = 'data'", f"data_dir = '{moved / 'volume'}'"))
    monkeypatch.chdir(moved)
    code, out, err = run(capsys, "doctor")
    model_line = [line for line in out.splitlines() if "model:" in line]
    assert model_line and model_line[0].startswith("ok"), out + err
    code, out, err = run(capsys, "models", "activate", earlier)
    assert code == 0, err

    listen(caplog)
    with caplog.at_level(logging.WARNING):
        services = build_services(load_settings(moved / "config.toml"))
    try:
        assert services.holder.version == earlier
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
        paths = {r["version"]: r["path"] for r in services.db.query("SELECT * FROM model_versions")}
        assert paths == {v: str(moved / "volume" / "models" / f"{v}.pt") for v in (earlier, active)}
    finally:
        services.db.close()


def test_the_moderators_are_told_once_that_drafts_come_from_another_model_than_the_active_one(db, tmp_path,
                                                                                             tiny_checkpoint):
    """The active model's file went (or its bytes changed) and the service generates with the
    version active before it: one notice in the moderators' chat, not one per pool run; again
    only after it cleared."""
    from jobs.model_registry import install_checkpoint
    from tests.fakes.recording import Moderators

    models = tmp_path / "models"
    earlier = install_checkpoint(db, tiny_checkpoint, models, val_bpc=None)
    model_rows.promote(db, earlier)
    active = install_checkpoint(db, saved(tiny_checkpoint, tmp_path / "b.pt", "b"), models, val_bpc=None)
    model_rows.promote(db, active)
    moderators = Moderators()
    service = small_service(db, models / f"{earlier}.pt", moderators)
    gone = models / f"{active}.pt"
    kept = gone.read_bytes()
    gone.unlink()
    for _ in range(2):
        asyncio.run(service.follow_active_model())
    assert len(moderators.notes) == 1 and active in moderators.notes[0] and earlier in moderators.notes[0]
    gone.write_bytes(kept)      # put back: the service follows it, and a later loss is told again
    asyncio.run(service.follow_active_model())
    assert service.holder.version == active and len(moderators.notes) == 1
    gone.unlink()
    asyncio.run(service.follow_active_model())
    assert len(moderators.notes) == 2 and active in moderators.notes[1], moderators.notes


def small_service(db, checkpoint: Path, moderation):
    """A Service generating with `checkpoint`: one channel draft a pool run, no publishers."""
    from corpus.stoplist import StopList
    from jobs.generator import GeneratorHolder
    from jobs.pool import PoolOptions
    from jobs.service import Service, ServicePlan
    from model.sample_options import SampleOptions

    return Service(db, GeneratorHolder(checkpoint), plan=ServicePlan(
        sample=SampleOptions(0.8, 60, 0), pool=PoolOptions(channel_size=1, subscriber_size=0)), publishers=[],
        moderation=moderation, stoplist=StopList())
