"""`buhurt models list|install|activate` through the real CLI, and the running service following
an activation made by another process. Real SQLite files, real checkpoints."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.tiny_model import variant
from corpus.db import open_db
from corpus.store import model_versions as model_rows


run = run_cli


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A folder with a config.toml whose data_dir is ./data and no bundled model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text("[paths]\ndata_dir = 'data'\n[startup]\nuse_bundled_model = false\n")
    return tmp_path


def versions(home: Path) -> dict[str, dict]:
    db = open_db(home / "data" / "buhurt.sqlite3")
    try:
        return {r["version"]: r for r in db.query("SELECT * FROM model_versions")}
    finally:
        db.close()


def test_install_activate_and_roll_back(home, capsys, tiny_checkpoint):
    code, out, err = run(capsys, "models", "list")
    assert code == 0 and "no model versions yet" in out, err
    code, out, err = run(capsys, "sample")          # no model at all: one line, not a traceback
    assert code == 2 and err.startswith("error: no model yet") and err.count("\n") == 1

    from tests.helpers import varied_posts

    gpu = variant(tiny_checkpoint, home / "from-gpu-box.pt", "a")
    (home / "val.txt").write_text("\n\n".join(varied_posts(10)), encoding="utf-8")
    code, out, err = run(capsys, "models", "install", str(gpu), "--no-tune", "--activate", "--text", "val.txt")
    assert code == 0 and "installed model" in out and "(active)" in out and "bits/char" in out, err
    first = out.split()[2]
    assert (home / "data" / "models" / f"{first}.pt").is_file()
    assert versions(home)[first]["val_bpc"] > 0

    second = variant(tiny_checkpoint, home / "newer.pt", "b")
    code, out, err = run(capsys, "models", "install", str(second), "--no-tune")
    assert code == 0 and "(candidate)" in out, err
    newer = out.split()[2]
    code, out, err = run(capsys, "models", "activate", newer[:6])
    assert code == 0 and f"active model: {newer}" in out, err
    rows = versions(home)
    assert (rows[first]["status"], rows[newer]["status"]) == ("retired", "active")

    code, out, err = run(capsys, "models", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and any(newer in line and line.endswith(" *") for line in lines)

    code, out, err = run(capsys, "models", "activate", first)   # the rollback
    assert code == 0 and versions(home)[first]["status"] == "active", err
    code, out, err = run(capsys, "sample", "--num", "1", "--seed", "3", "--length", "40")
    assert code == 0 and out.strip(), err


def test_installing_a_good_copy_again_repairs_a_damaged_installed_file(home, capsys, tiny_checkpoint):
    good = variant(tiny_checkpoint, home / "good.pt", "a")
    code, _, err = run(capsys, "models", "install", str(good), "--no-tune", "--activate")
    assert code == 0, err
    version, = versions(home)
    installed = home / "data" / "models" / f"{version}.pt"
    installed.write_bytes(b"")                       # damaged on disk: "put the file back" is the remedy
    code, _, err = run(capsys, "models", "install", str(good), "--no-tune", "--activate")
    assert code == 0, err
    assert installed.read_bytes() == good.read_bytes() and versions(home)[version]["status"] == "active"
    code, out, err = run(capsys, "sample", "--num", "1", "--seed", "3", "--length", "40")
    assert code == 0 and out.strip(), err


def test_bad_input_changes_nothing(home, capsys, tiny_checkpoint):
    broken = home / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    code, out, err = run(capsys, "models", "install", str(broken), "--no-tune", "--activate")
    assert code == 2 and "broken.pt" in err and "is not a file that torch.save wrote" in err and err.count("\n") == 1
    assert "weights_only" not in err      # torch's advice to load it unsafely is not passed on
    assert versions(home) == {} and not (home / "data" / "models").exists()
    broken.write_bytes(b"")
    code, out, err = run(capsys, "models", "install", str(broken), "--no-tune", "--activate")
    assert code == 2 and err.strip().endswith("broken.pt' is an empty file") and err.count("\n") == 1

    code, out, err = run(capsys, "models", "install", str(home / "missing.pt"))
    assert code == 2 and "missing.pt" in err, err

    good = variant(tiny_checkpoint, home / "good.pt", "c")
    run(capsys, "models", "install", str(good), "--no-tune", "--activate")
    other = variant(tiny_checkpoint, home / "other.pt", "d")
    run(capsys, "models", "install", str(other), "--no-tune")
    before = versions(home)
    code, out, err = run(capsys, "models", "activate", "zzzz")
    assert code == 2 and "no model version matches 'zzzz'" in err
    code, out, err = run(capsys, "models", "activate", "")           # a prefix of every version: too short
    assert code == 2 and "give at least 4 characters" in err
    from jobs.errors import JobError
    from jobs.model_registry import version_matching

    db = open_db(home / "data" / "buhurt.sqlite3")
    try:
        for version in ("abcd1111aaaa", "abcd2222bbbb"):               # two versions sharing a prefix
            model_rows.register_model(db, version, f"/m/{version}.pt", val_bpc=None, metrics={}, status="candidate")
        with pytest.raises(JobError, match=r"2 model versions \(abcd1111aaaa, abcd2222bbbb\) matches 'abcd'"):
            version_matching(db, "abcd")
        assert version_matching(db, "abcd1") == "abcd1111aaaa"
        db.execute("DELETE FROM model_versions WHERE version LIKE 'abcd%'")
    finally:
        db.close()
    (home / "data" / "models" / f"{next(v for v, r in before.items() if r['status'] == 'candidate')}.pt").unlink()
    code, out, err = run(capsys, "models", "activate", next(v for v, r in before.items() if r["status"] == "candidate"))
    assert code == 2 and "is not installed (its checkpoint is missing)" in err
    assert versions(home) == before


def test_activating_a_rejected_candidate_copies_it_out_of_its_run_folder(db, tmp_path, tiny_checkpoint):
    from jobs.model_registry import activate_version
    from jobs.retrain import prune_runs

    run_dir = tmp_path / "ck" / "run-20260101-030000-000000"
    candidate = variant(tiny_checkpoint, run_dir / "best.pt", "e")
    from model.files import file_version

    version = file_version(candidate)
    model_rows.register_model(db, version, str(candidate), val_bpc=2.0, status="rejected")
    target = activate_version(db, version, tmp_path / "models")
    assert target == tmp_path / "models" / f"{version}.pt" and target.is_file()
    (tmp_path / "ck" / "run-20260102-030000-000000").mkdir()
    assert prune_runs(db, tmp_path / "ck", keep=1) == [run_dir]
    row = model_rows.active_model(db)
    assert row["version"] == version and Path(row["path"]) == target and target.is_file()


def test_the_running_service_follows_an_activation(db, tmp_path, tiny_checkpoint, caplog):
    from corpus.stoplist import StopList
    from jobs.generator import GeneratorHolder
    from jobs.model_registry import install_checkpoint
    from jobs.moderation import AutoApprove
    from jobs.pool import PoolOptions
    from model.sample_options import SampleOptions
    from jobs.service import Service, ServicePlan

    models = tmp_path / "models"
    old = install_checkpoint(db, tiny_checkpoint, models, val_bpc=None)
    model_rows.promote(db, old)
    service = Service(db, GeneratorHolder(models / f"{old}.pt"), plan=ServicePlan(sample=SampleOptions(0.8, 60, 0),
                      pool=PoolOptions(channel_size=1, subscriber_size=0)), publishers=[], moderation=AutoApprove(),
                      stoplist=StopList())
    assert asyncio.run(service.follow_active_model()) is None          # nothing changed

    new = install_checkpoint(db, variant(tiny_checkpoint, tmp_path / "new.pt", "f"), models, val_bpc=None)
    model_rows.promote(db, new)             # what `buhurt models activate` does from another process
    asyncio.run(service.fill_pools())
    assert service.holder.version == new

    broken = install_checkpoint(db, variant(tiny_checkpoint, tmp_path / "b.pt", "g"), models, val_bpc=None)
    (models / f"{broken}.pt").write_bytes(b"truncated")
    model_rows.promote(db, broken)
    assert asyncio.run(service.follow_active_model()) is None          # keeps generating with `new`
    assert service.holder.version == new and f"the active model {broken}'s checkpoint" in caplog.text
    assert f"still generating with {new}" in caplog.text


def test_registering_known_bytes_again_never_demotes_or_loses_them(db, tmp_path, tiny_checkpoint):
    from jobs.model_registry import file_version, install_checkpoint

    active = install_checkpoint(db, tiny_checkpoint, tmp_path / "models", val_bpc=None)
    model_rows.promote(db, active)
    model_rows.register_model(db, active, "ck/run-x/best.pt", val_bpc=9.0, status="rejected")  # same bytes again
    row = model_rows.active_model(db)
    assert row["version"] == active and row["path"] == str(tmp_path / "models" / f"{active}.pt")

    run_copy = variant(tiny_checkpoint, tmp_path / "ck" / "run-y" / "best.pt", "h")
    rejected = file_version(run_copy)   # a retrain's rejected candidate, recorded in its run folder as retrain does
    model_rows.register_model(db, rejected, str(run_copy), val_bpc=None, status="rejected")
    install_checkpoint(db, run_copy, tmp_path / "models", val_bpc=None)   # `buhurt models install` of that file
    row = model_rows.get_model(db, rejected)
    assert row["status"] == "rejected" and row["path"] == str(tmp_path / "models" / f"{rejected}.pt")


def test_a_models_folder_that_cannot_be_written_is_one_line_and_changes_nothing(home, capsys, tiny_checkpoint):
    """data/models a file (or full, or read-only): `models install` and a rollback that must copy
    a candidate into it said 'unexpected FileExistsError' with a traceback, exit 1."""
    good = variant(tiny_checkpoint, home / "good.pt", "e")
    (home / "data").mkdir()
    (home / "data" / "models").write_text("someone's notes")
    code, out, err = run(capsys, "models", "install", str(good), "--no-tune", "--activate")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(Path("data", "models")) in err and "File exists" in err and "unexpected" not in err, err
    assert versions(home) == {} and (home / "data" / "models").read_text() == "someone's notes"


def test_a_lexicon_is_never_written_over_an_installed_model_s_file(home, capsys, tiny_run, tiny_checkpoint):
    from model.files import file_version

    good = variant(tiny_checkpoint, home / "good.pt", "lexicon")
    code, out, err = run(capsys, "models", "install", str(good), "--no-tune", "--activate")
    assert code == 0, err
    version = out.split()[2]
    installed = home / "data" / "models" / f"{version}.pt"
    before = installed.read_bytes()
    for argv in (["--checkpoint", str(installed)], ["--checkpoint", str(good), "--output", str(installed)]):
        code, out, err = run(capsys, "lexicon", *argv, "--text", str(tiny_run[0]))
        assert code == 2 and err.count("\n") == 1 and f"model version {version}" in err and "--output" in err, err
    assert installed.read_bytes() == before and file_version(good) == version   # /meme N still finds its model
    code, out, err = run(capsys, "lexicon", "--checkpoint", str(installed), "--text", str(tiny_run[0]),
                         "--output", "with-lexicon.pt")
    assert code == 0 and (home / "with-lexicon.pt").is_file(), err
    assert installed.read_bytes() == before and versions(home)[version]["status"] == "active"


def test_installing_a_known_version_again_with_text_records_its_bits_per_char(home, capsys, tiny_checkpoint):
    from tests.helpers import varied_posts

    good = variant(tiny_checkpoint, home / "good.pt", "scored later")
    code, out, err = run(capsys, "models", "install", str(good), "--no-tune", "--activate")
    assert code == 0, err
    version = out.split()[2]
    assert versions(home)[version]["val_bpc"] is None
    (home / "val.txt").write_text("\n\n".join(varied_posts(10)), encoding="utf-8")
    code, out, err = run(capsys, "models", "install", str(good), "--no-tune", "--text", "val.txt")
    assert code == 0 and "bits/char on val.txt" in out, err
    said = float(out.split(", ")[1].split()[0])
    row = versions(home)[version]
    assert row["val_bpc"] is not None and round(row["val_bpc"], 4) == said and row["status"] == "active"
    code, out, err = run(capsys, "models", "list")
    assert f"{said:.4f}" in out, out


def test_installing_with_a_text_that_has_characters_the_model_lacks_says_they_were_left_out(home, capsys,
                                                                                           tiny_checkpoint):
    """The bits/char of a model that lacks some of the text's characters (trained on another
    export) leaves them out, as buhurt eval says: models install --text printed it as the text's,
    and a model that knows fewer characters looked the better one to activate."""
    from tests.helpers import varied_posts

    good = variant(tiny_checkpoint, home / "good.pt", "lacks Ц")
    (home / "val.txt").write_text("\n\n".join(varied_posts(10)) + "\n\nЦАРЬ ЦАРЕВИЧ\n@\nЦЕНА", encoding="utf-8")
    code, out, err = run(capsys, "models", "install", str(good), "--no-tune", "--text", "val.txt")
    assert code == 0 and "bits/char on val.txt" in out, err
    assert "characters outside its vocabulary left out" in out and "Ц" in out, out
