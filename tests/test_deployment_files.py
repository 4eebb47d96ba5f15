"""The deployment files say what the README promises: the image's HEALTHCHECK runs the cheap
doctor, compose runs the bot with it and a stop grace longer than the service's, systemd stops
with SIGTERM; and `buhurt doctor --quick` imports no torch."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import PATIENCE, ROOT


def test_dockerfile_healthcheck_runs_the_quick_doctor():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    (line,) = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    assert line.endswith('CMD ["buhurt", "doctor", "--quick"]') and "--start-period=" in line


def test_compose_runs_the_bot_with_the_health_check_and_a_long_enough_grace():
    from bot.app import SHUTDOWN_GRACE_SECONDS

    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert re.search(r"^  bot:\n", text, re.M) and re.search(r"^  train:\n", text, re.M)
    assert 'test: ["CMD", "buhurt", "doctor", "--quick"]' in text
    grace = int(re.search(r"stop_grace_period: (\d+)s", text).group(1))
    assert grace > SHUTDOWN_GRACE_SECONDS
    assert "BUHURT_TELEGRAM_TOKEN: ${BUHURT_TELEGRAM_TOKEN" in text  # from the environment, not the file


def test_systemd_unit_stops_with_sigterm_and_waits_long_enough():
    from bot.app import SHUTDOWN_GRACE_SECONDS

    text = (ROOT / "docs" / "buhurt.service").read_text(encoding="utf-8")
    assert "ExecStart=/srv/buhurt/.venv/bin/buhurt run" in text and "KillSignal=SIGTERM" in text
    assert int(re.search(r"TimeoutStopSec=(\d+)", text).group(1)) > SHUTDOWN_GRACE_SECONDS


def test_quick_doctor_imports_no_torch(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path}'\n", encoding="utf-8")
    code = ("import sys; from bot.cli import main\n"
            "try:\n    main(['--config', sys.argv[1], 'doctor', '--quick'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'telegram' not in sys.modules, 'heavy import'\n")
    result = subprocess.run([sys.executable, "-c", code, str(config)], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=PATIENCE)
    assert result.returncode == 0, result.stderr
    assert "FAIL  database" in result.stdout  # no database there yet: the check says so


def test_the_image_installs_the_cpu_torch_by_default():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    index = re.search(r'^ARG TORCH_INDEX="([^"]*)"', text, re.M).group(1)
    assert index.endswith("/whl/cpu")          # PyTorch's CPU wheel index, not the CUDA build
    assert re.search(r'pip install "torch==\$\{TORCH_VERSION\}" --index-url "\$TORCH_INDEX"', text)
    version = re.search(r"^ARG TORCH_VERSION=(\S+)", text, re.M).group(1)
    assert f"torch=={version}" in (ROOT / "Makefile").read_text(encoding="utf-8")   # the same torch everywhere


def test_the_readme_docker_run_waits_for_a_clean_stop():
    from bot.app import SHUTDOWN_GRACE_SECONDS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    run = re.search(r"docker run -d [^\n]*", readme).group(0)
    assert int(re.search(r"--stop-timeout (\d+)", run).group(1)) > SHUTDOWN_GRACE_SECONDS
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "--stop-timeout 30" in dockerfile


def test_the_health_checks_start_period_covers_a_first_training():
    from bot.config_sections import TelegramSettings
    from jobs.retrain import FIRST_MODEL_MINUTES

    needed = TelegramSettings().startup_wait_seconds + FIRST_MODEL_MINUTES * 60   # Bot API wait, then training
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    periods = [re.search(r"--start-period=(\d+)m", dockerfile).group(1), re.search(r"start_period: (\d+)m",
                                                                                    compose).group(1)]
    assert periods[0] == periods[1] and int(periods[0]) * 60 > needed


def test_compose_passes_every_token_the_bot_reads_from_the_environment():
    """docs/deployment.md: the VK community's messages need BUHURT_VK_COMMUNITY_TOKEN; compose passed
    only the Telegram and VK user tokens, so `vk.messages_group_id` stopped the bot at every restart."""
    from bot.config import ENV_SECRETS

    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    bot = text.split("\n  train:\n")[0]
    for variable in ENV_SECRETS.values():
        assert f"{variable}: ${{{variable}:-}}" in bot, variable


def test_the_systemd_units_steps_make_each_folder_before_writing_into_it_and_put_the_config_in_place():
    """Followed literally, `useradd --system` made no home, so `sudo -u buhurt git clone ... /srv/buhurt`
    was refused (root's /srv), /etc/buhurt never existed for secrets.env, and no step put the
    config file where BUHURT_CONFIG points."""
    text = (ROOT / "docs" / "buhurt.service").read_text(encoding="utf-8")
    steps = [line[1:].strip() for line in text.splitlines() if line.startswith("#   sudo")]
    config = re.search(r"^Environment=BUHURT_CONFIG=(\S+)$", text, re.M).group(1)
    home = re.search(r"^WorkingDirectory=(\S+)$", text, re.M).group(1)

    def first(predicate) -> int:
        return next(i for i, step in enumerate(steps) if predicate(step))

    made = first(lambda s: "install -d" in s and home in s and "-o buhurt" in s and "/etc/buhurt" in s)
    assert made < first(lambda s: "git clone" in s)
    assert made < first(lambda s: "/etc/buhurt/" in s)
    assert made < first(lambda s: config in s and re.search(r"\b(cp|install)\b", s))


def test_the_systemd_units_doctor_line_runs_where_the_service_finds_its_data():
    """config.example.toml's paths.data_dir = "data" is relative: to the folder `buhurt` runs in. The
    service runs in the unit's WorkingDirectory; the unit's comment checked it with `sudo -u buhurt
    /srv/buhurt/.venv/bin/buhurt --config ... doctor` from wherever the operator stood, which looked
    for (and found no) database under that folder's data/."""
    from bot.config import DEFAULTS

    text = (ROOT / "docs" / "buhurt.service").read_text(encoding="utf-8")
    workdir = re.search(r"^WorkingDirectory=(\S+)", text, re.M).group(1)
    assert not DEFAULTS.paths.data_dir.startswith("/")   # relative: where the command runs matters
    lines = [line for line in text.splitlines() if line.startswith("#") and "buhurt --config" in line]
    assert lines and all(f"cd {workdir} && " in line for line in lines), lines


def test_the_compose_training_reads_and_writes_where_the_bots_config_says(capsys, tmp_path, monkeypatch):
    """The `train` service ran with --input-h5 /data/train/corpus.h5 and --checkpoint-dir
    /data/checkpoints; with the example's paths.data_dir = "data" (under the image's WORKDIR /data,
    as the Dockerfile allows) the bot's files are in /data/data/: the training found no input, or
    trained what the bot never reads. Its paths now follow the mounted config, as `buhurt train`'s
    defaults do."""
    from bot.cli import cli

    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    service = compose[compose.index("\n  train:\n"):]
    command = json.loads(re.search(r"command: (\[[^\]]*\])", service, re.S).group(1))
    assert command[0] == "train"
    monkeypatch.chdir(tmp_path)   # the image's WORKDIR
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.example.toml").read_text(encoding="utf-8"), encoding="utf-8")
    context = cli.make_context("buhurt", ["--config", str(config), *command])
    with context:
        sub = cli.get_command(context, command[0])
        context.invoke(cli.callback, config_path=config)   # the group's defaults (ctx.obj, default_map)
        params = sub.make_context(command[0], command[1:], parent=context).params
    data = Path("data")
    assert (Path(params["input_h5"]), Path(params["input_json"]), Path(params["checkpoint_dir"])) == (
        data / "train" / "corpus.h5", data / "train" / "corpus.json", data / "checkpoints")
