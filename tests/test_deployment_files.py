"""The deployment files say what the README promises: the image's HEALTHCHECK runs the cheap
doctor, compose runs the bot with it and a stop grace longer than the service's, systemd stops
with SIGTERM; and `buhurt doctor --quick` imports no torch."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.helpers import ROOT


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
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "FAIL  database" in result.stdout  # no database there yet: the check says so
