"""Bad start-up states (issue 14, point 4) and secrets on every way out of the process (point 5):
one line and a non-zero exit, or a retry with back-off where waiting helps; never a raw traceback,
never a token. `buhurt` runs as a subprocess against the fake Bot API server."""
from __future__ import annotations

import http.server
import os
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

from tests.helpers import PATIENCE, ROOT, assert_one_line, buhurt, run_cli
from tests.fakes.telegram_app import make_settings, write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


# ---- configuration values that used to pass and fail later ------------------------------------

@pytest.mark.parametrize("table, value, message", [
    ("[schedule]\npool_every_minutes = inf", None, "schedule.pool_every_minutes must be a finite number, got inf"),
    ("[schedule]\nreactions_every_minutes = nan", None, "schedule.reactions_every_minutes must be a finite number"),
    ("[schedule]\nscrape_every_hours = 1e12", None, "schedule.scrape_every_hours must be a positive number of at most"),
    ("[pool]\nbatch_size = 0", None, "pool.batch_size must be a positive integer"),
    ("[pool]\nchannel_size = -1", None, "pool.channel_size must be an integer >= 0"),
    ("[telegram]\nbase_url = 'api.telegram.org/bot'", None, "telegram.base_url must be an http(s) URL"),
    ("[telegram]\nbase_url = 'htp://127.0.0.1/bot'", None, "telegram.base_url must be an http(s) URL"),
    ("[telegram]\nbase_url = 'http://127.0.0.1:99999999/bot'", None, "telegram.base_url must be an http(s) URL"),
    ("[backup]\nkeep = 0", None, "backup.keep must be an integer >= 1"),
])
def test_bad_values_are_one_line_naming_the_key(capsys, tmp_path, table, value, message):
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n{table}\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(config), "run", "--once")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err


def test_a_channel_without_a_token_is_one_line_and_nothing_is_published_locally(capsys, tmp_path):
    """The token left out of the environment (a new shell, a unit file without it): `buhurt run`
    went on as the local channel, auto-approved every draft whatever telegram.moderators said and
    recorded them as published, so they never reached the channel once the token was back."""
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n[corpus]\nseed_with_sample = false\n"
                      "[telegram]\nchannels = ['@my_channel']\nmoderators_chat = -1001234567890\n"
                      "moderators = [12345]\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(config), "run", "--once")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "telegram.channels" in lines[0] and "BUHURT_TELEGRAM_TOKEN" in lines[0], err
    assert not (tmp_path / "data" / "local_channel.txt").exists() and not out


def test_log_file_in_a_missing_folder_is_created_and_rotated(capsys, tmp_path):
    log_file = tmp_path / "logs" / "deep" / "buhurt.log"
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n[corpus]\nseed_with_sample = false\n"
                      f"[log]\nfile = '{log_file}'\nmax_bytes = 300\nbackup_count = 2\n", encoding="utf-8")
    import logging

    try:
        for _ in range(3):
            code, _, err = run_cli(capsys, "--config", str(config), "models", "list")
            assert code == 0, err
            for n in range(20):
                logging.getLogger("t").warning("line %d of a log that outgrows max_bytes", n)
    finally:
        logging.basicConfig(force=True)
    assert log_file.is_file()
    rotated = sorted(p.name for p in log_file.parent.iterdir())
    assert rotated == ["buhurt.log", "buhurt.log.1", "buhurt.log.2"]
    assert all(p.stat().st_size <= 400 for p in log_file.parent.iterdir())


def test_log_file_that_cannot_be_opened_is_one_line(capsys, tmp_path):
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n[log]\nfile = '{tmp_path / 'a-file' / 'x.log'}'\n",
                      encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(config), "run", "--once")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "log.file" in lines[0] and "a-file" in lines[0], err


# ---- the Bot API at start-up ----------------------------------------------------------------------

def test_unreachable_bot_api_is_retried_then_one_line(tmp_path, server):
    make_settings(tmp_path, server)
    base_url = f"http://127.0.0.1:{free_port()}/bot"
    config = write_config(tmp_path, server, telegram={"base_url": base_url, "startup_wait_seconds": 1.0})
    result = buhurt("--config", str(config), "run", "--once")
    line = assert_one_line(result, "cannot reach the Telegram Bot API", base_url, "startup_wait_seconds")
    retries = [row for row in result.stderr.splitlines() if "unreachable" in row and "retrying in" in row]
    assert len(retries) >= 2, result.stderr  # 0.25 s, 0.5 s: then the 1 s budget is spent
    assert "tries" in line


def test_bot_api_that_comes_back_is_waited_for(tmp_path, server):
    make_settings(tmp_path, server)
    server.fail("getMe", 502, times=2)  # a gateway still starting
    config = write_config(tmp_path, server, telegram={"startup_wait_seconds": 60.0})
    result = buhurt("--config", str(config), "run", "--once")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reached the Telegram Bot API after 3 tries" in result.stderr
    # three by the check before the model loads, one by the Application's start
    assert len(server.calls_of("getMe", ok_only=False)) == 4


def test_rejected_token_is_one_line_and_never_printed(tmp_path, server):
    """PTB's InvalidToken message carries the token; it must reach no stream, log file or row."""
    rejected = "987654321:AAH-rejected-token-value-that-must-stay-secret"
    log_file = tmp_path / "logs" / "bot.log"
    make_settings(tmp_path, server)
    config = write_config(tmp_path, server, telegram={"token": rejected}, log={"file": str(log_file)})
    for args in (("run", "--once"), ("run",)):
        result = buhurt("--config", str(config), *args)
        assert_one_line(result, "rejected the bot token", "telegram.token")
        assert "generating with model" not in result.stderr   # said before the model loads
        assert rejected not in result.stdout + result.stderr
        assert rejected.split(":")[1] not in result.stdout + result.stderr
    debug = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "run", "--once"], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "BUHURT_DEBUG": "1"},
                           capture_output=True, text=True, timeout=PATIENCE)
    assert debug.returncode == 2 and "Traceback" in debug.stderr  # the operator asked for it...
    assert rejected.split(":")[1] not in debug.stdout + debug.stderr  # ...but not for the token
    assert log_file.is_file() and rejected.split(":")[1] not in log_file.read_text(encoding="utf-8")
    secret = rejected.split(":")[1].encode()
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert any(c.status == 401 for c in server.calls)  # it was really tried and refused


def test_an_unexpected_error_prints_a_redacted_traceback(capsys, tmp_path, monkeypatch):
    from bot import serve as bot_serve
    from bot.secrets import REDACTOR

    token = "123456789:AAE-token-inside-an-unexpected-error-000000"
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n", encoding="utf-8")
    REDACTOR.add(token)  # as load_settings does with the configured tokens

    def boom(settings, *, once):
        raise RuntimeError(f"a bug that mentions https://api.telegram.org/bot{token}/getMe")

    monkeypatch.setattr(bot_serve, "run_service", boom)
    code, out, err = run_cli(capsys, "--config", str(config), "run", "--once")
    assert code == 1 and "RuntimeError" in err and "Traceback" in err
    assert token not in out + err and token.split(":")[1] not in out + err


# ---- the database at start-up ---------------------------------------------------------------------

def test_database_locked_at_startup_is_one_line(tmp_path, server):
    settings = make_settings(tmp_path, server)
    config = write_config(tmp_path, server, paths={"data_dir": str(settings.data_dir), "busy_timeout_seconds": 0.2})
    holder = sqlite3.connect(settings.database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = buhurt("--config", str(config), "run", "--once")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_one_line(result, "locked", str(settings.database), "busy_timeout_seconds")
    assert server.sent() == []  # nothing happened half-way
    again = buhurt("--config", str(config), "run", "--once")
    assert again.returncode == 0, again.stderr[-3000:]


def test_a_refusal_quoting_the_token_reaches_the_moderators_redacted(tmp_path, server):
    """A channel refusal's text goes into the moderators' notice: the token in it is replaced."""
    import asyncio

    from corpus.store import drafts as draft_rows
    from tests.fakes.telegram_app import CHANNEL, MODERATORS_CHAT, bot_running, until

    settings = make_settings(tmp_path, server)
    server.fail("sendMessage", 403, chat_id=CHANNEL, times=3,
                description=f"Forbidden: bot was kicked (POST /bot{server.token}/sendMessage)")

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            draft_rows.add_draft(db, text="ТОКЕН\n@\nНЕ ВИДЕН", model_version="v", temperature=0.8, seed=1,
                                 max_length=500, status="queued")
            await app.bot_data.service.publish()
            return await until(lambda: [m for m in server.sent(MODERATORS_CHAT) if "ТОКЕН" not in m["text"]
                                        and "kicked" in m["text"]])

    (notice,) = asyncio.run(main())
    assert "***" in notice["text"] and server.token.split(":")[1] not in notice["text"]


# ---- getMe refused or under flood control (issue 26, point 11) ------------------------------------

def test_get_me_refused_with_403_is_one_line(tmp_path, server):
    make_settings(tmp_path, server)
    server.fail("getMe", 403, times=1000, description="Forbidden: bot was blocked")
    config = write_config(tmp_path, server)
    for args in (("run", "--once"), ("run",)):
        result = buhurt("--config", str(config), *args)
        assert_one_line(result, "refused getMe", "Forbidden: bot was blocked", server.base_url, "telegram.token")
        assert server.token.split(":")[1] not in result.stdout + result.stderr
    assert server.sent() == []


def test_get_me_under_flood_control_is_waited_for(tmp_path, server):
    make_settings(tmp_path, server)
    server.fail("getMe", 429, retry_after=1, times=2)  # the check before the model loads waits them out
    config = write_config(tmp_path, server, telegram={"startup_wait_seconds": 60.0})
    result = buhurt("--config", str(config), "run", "--once")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "flood control on getMe" in result.stderr and "cycle done" in result.stderr
    assert len(server.calls_of("getMe", ok_only=False)) == 4   # 3 by the check, 1 by the Application


def test_get_me_flood_control_longer_than_the_start_up_wait_is_one_line(tmp_path, server):
    make_settings(tmp_path, server)
    server.fail("getMe", 429, retry_after=1, times=1000)
    config = write_config(tmp_path, server, telegram={"startup_wait_seconds": 0.5})
    result = buhurt("--config", str(config), "run", "--once")
    assert_one_line(result, "flood control", "retry after 1 s", "startup_wait_seconds")
    assert server.sent() == []


class WebPage(http.server.BaseHTTPRequestHandler):
    """A web server where the Bot API should be (a proxy's error page, the wrong port): HTML, status 200."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = ("<html>\n<head><title>Welcome</title></head>\n<body>" + "<p>not the Bot API</p>\n" * 400
                + "</body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_base_url_that_answers_a_web_page_is_one_line_without_a_traceback(tmp_path, server):
    """python-telegram-bot logged 'Can not load invalid JSON data: "<the whole page>"' with the JSON
    parser's traceback before the one line, in `buhurt run` and in `buhurt doctor`. Now its line alone,
    the page shortened; the token still never shows."""
    make_settings(tmp_path, server)
    web = http.server.HTTPServer(("127.0.0.1", 0), WebPage)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        base_url = f"http://127.0.0.1:{web.server_port}/bot"
        config = write_config(tmp_path, server, telegram={"base_url": base_url, "startup_wait_seconds": 1.0})
        result = buhurt("--config", str(config), "run", "--once")
        doctor = buhurt("--config", str(config), "doctor")
    finally:
        web.shutdown()
        web.server_close()
    assert_one_line(result, "refused getMe", base_url, "Invalid server response")
    said = [line for line in result.stderr.splitlines() if "Can not load invalid JSON data" in line]
    assert said and all(len(line) < 800 for line in said), result.stderr[-3000:]
    assert "Traceback" not in doctor.stdout + doctor.stderr, doctor.stderr[-3000:]
    assert "FAIL  telegram token" in doctor.stdout
    assert server.token.split(":")[1] not in result.stdout + result.stderr + doctor.stdout + doctor.stderr


class OtherJsonApi(http.server.BaseHTTPRequestHandler):
    """Another JSON service where the Bot API should be (a health endpoint, the wrong service's port)."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"status": "ok", "service": "something else"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_base_url_that_answers_another_json_is_one_line_and_a_doctor_finding(tmp_path, server):
    """JSON that is no Bot API answer (no 'result') ended `buhurt run` with a traceback and 'error:
    unexpected KeyError: 'result'', exit 1, and `buhurt doctor` the same way, none of its checks shown."""
    make_settings(tmp_path, server)
    other = http.server.HTTPServer(("127.0.0.1", 0), OtherJsonApi)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        base_url = f"http://127.0.0.1:{other.server_port}/bot"
        config = write_config(tmp_path, server, telegram={"base_url": base_url})
        result = buhurt("--config", str(config), "run", "--once")
        doctor = buhurt("--config", str(config), "doctor")
    finally:
        other.shutdown()
        other.server_close()
    assert_one_line(result, base_url, "not a Bot API answer", "KeyError", "telegram.base_url")
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr, doctor.stderr[-3000:]
    (line,) = [row for row in doctor.stdout.splitlines() if row.startswith("FAIL  telegram token")]
    assert base_url in line and "not a Bot API answer" in line, doctor.stdout
    assert "checks passed" in doctor.stdout
    assert server.token.split(":")[1] not in result.stdout + result.stderr + doctor.stdout + doctor.stderr
