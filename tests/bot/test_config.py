"""Config: typed sections, one-line errors naming table.key (renamed keys too), env secrets, never a
token in a log; config.example.toml and the generated reference docs/config.md."""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import sys
import tomllib

import pytest

from bot.config import RENAMED, SECTIONS, ConfigError, Settings, load_settings
from bot.config_reference import field_docs, render
from bot.secrets import REDACTOR, Secret, setup_logging
from tests.helpers import ROOT, run_cli

EXAMPLE = ROOT / "config.example.toml"


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_and_names_only_keys_that_exist():
    settings = load_settings(EXAMPLE, environ={})
    assert settings == dataclasses.replace(Settings(), source=str(EXAMPLE))  # the example shows the defaults
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for table, values in raw.items():
        keys = {f.name for f in dataclasses.fields(SECTIONS[table])}
        assert set(values) <= keys, f"config.example.toml [{table}] names keys that do not exist"


def operator_keys() -> set[str]:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    return {f"{table}.{key}" for table, values in raw.items() for key in values}


def test_the_readme_lists_the_example_files_keys():
    """The README's table of the keys an operator sets is config.example.toml's keys."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The keys you set", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+\.\w+)` \|", section, re.M))
    assert listed == operator_keys() and 10 <= len(listed) <= 20


def test_every_example_key_has_a_comment():
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^\w+\s*=", line):
            commented = "#" in line or lines[index - 1].lstrip().startswith("#")
            assert commented, f"config.example.toml line {index + 1} has no comment: {line}"


def test_every_key_has_a_one_line_doc_where_it_is_defined():
    for table, cls in SECTIONS.items():
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            assert docs.get(f.name, "").strip(), f"{cls.__module__}.{cls.__qualname__}.{f.name} ({table}.{f.name}) " \
                                                  "has no comment: docs/config.md needs one"


def test_the_config_reference_is_what_the_generator_writes():
    page = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert page == render(), "docs/config.md is stale: run python -m bot.config_reference"
    for table, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in page.split(f"## [{table}]")[1].split("\n## ")[0], f"{table}.{f.name}"
    done = subprocess.run([sys.executable, "-m", "bot.config_reference", "--check"], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_generator_documents_a_field_from_its_comment():
    @dataclasses.dataclass(frozen=True)
    class Example:
        plain: int = 1   # on the line
        # above the line,
        # over two lines
        above: str = "#{n}"
        none: bool = False

    assert field_docs(Example) == {"plain": "on the line", "above": "above the line, over two lines"}


@pytest.mark.parametrize("old, new", sorted(RENAMED.items()))
def test_a_renamed_key_gives_one_line_naming_its_new_place(tmp_path, capsys, old, new):
    table, key = old.split(".")
    path = write(tmp_path, f"[{table}]\n{key} = 1\n")
    code, out, err = run_cli(capsys, "--config", str(path), "models", "list")
    assert code == 2 and not out
    assert err.strip().endswith(f"{path}: {old} is now {new} (move it to [{new.split('.')[0]}])")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text, message", [
    ("[sample]\ntemprature = 1.0\n", "unknown key sample.temprature"),
    ("[sample]\ntemperature = 'hot'\n", "sample.temperature must be \"auto\" or a number > 0, got 'hot'"),
    ("[sample]\ntemperature = 0\n", "sample.temperature must be \"auto\" or a number > 0, got 0.0"),
    ("[sample]\ntemperature = true\n", "sample.temperature must be a number or a string, got True"),
    ("[sample]\nwords = 'real'\n", "sample.words must be \"known\" or \"any\", got 'real'"),
    ("[sample]\ndictionary = 'de'\n", "sample.dictionary must be \"ru\" or \"none\", got 'de'"),
    ("[pool]\nchannel_size = 2.5\n", "pool.channel_size must be an integer"),
    ("[telegram]\nmoderators = ['me']\n", "telegram.moderators[0] must be an integer"),
    ("[telegram]\ntoken = '1:x'\n", "telegram.channels must be at least one channel"),
    ("[nonsense]\na = 1\n", "unknown table [nonsense]"),
    ("[schedule]\npublish_times = ['25:00']\n", "schedule.publish_times must be times as 'HH:MM'"),
    ("[schedule]\ntimezone = 'Mars/Olympus'\n",
     "schedule.timezone must be an IANA time zone name such as 'Europe/Moscow', got 'Mars/Olympus'"),
    ("[schedule]\npublish_times = ['09:00', '18:00', '09:00']\n",
     "schedule.publish_times must be times as 'HH:MM', each once (09:00 twice)"),
    ("[schedule]\npublish_times = ['9:00', '18:00', '09:00']\n",   # two posts at 09:00
     "schedule.publish_times must be times as 'HH:MM', each once (09:00 twice)"),
    ("[schedule]\nretrain_at = '3:30'\nretrain_until = '03:30'\n",   # a whole day of training
     "schedule.retrain_until must be a time other than retrain_at ('3:30'): the night window is empty"),
    ("[log]\nfile = 'bot.log'\nbackup_count = 0\n",   # Python's handler never rotates then: the file grew for ever
     "log.backup_count must be an integer >= 1 while log.max_bytes rotates the file (max_bytes = 0: never), got 0"),
    ("[train]\nlr_schedule = 'linear'\n", "train.lr_schedule must be 'step', 'cosine' or 'hold'"),
    ("[retrain]\nkeep_runs = -1\n", "retrain.keep_runs must be an integer >= 0"),
    ("[startup]\nuse_bundled_model = 1\n", "startup.use_bundled_model must be true or false, got 1"),
    ("[popularity]\ncopies = 0\n", "popularity.copies must be an integer >= 1, got 0"),
    ("[clean]\nnear_duplicate_threshold = 2\n", "clean.near_duplicate_threshold must be a number in (0, 1], got 2.0"),
    ("[sample\n", "malformed TOML"),
    ("[pool]\noversample = 0\n", "pool.oversample must be an integer from 1 to 20"),
    ("[screen]\nmin_known_words = 1.5\n", "screen.min_known_words must be a number from 0 to 1"),
    ("[screen]\nmin_known_words = 'most'\n", "screen.min_known_words must be a number"),
    ("[corpus]\ngap_lines = 0\n", "corpus.gap_lines must be an integer from 1 to 100"),
    ("[filter]\npatterns = ['[a-']\n", "filter.patterns must be valid regular expressions; invalid regular"
                                       " expression '[a-'"),
    ("[retrain]\nval_frac = 0\n", "retrain.val_frac must be a number in (0, 0.5)"),
    ("[sample]\nmax_length = 20000\n", "sample.max_length must be a positive integer up to 16384"),
    ("[publish]\nfooter = '#{n[0]}'\n", "publish.footer must be text where {n} (the meme number) is the only"),
    ("[publish]\nfooter = '#{n.real}'\n", "publish.footer must be text where {n} (the meme number) is the only"),
    ("[telegram]\nmoderators_chat = -100\nmoderators = [1, 2]\n[moderation]\nvotes = 3\n",
     "moderation.votes must be at most the number of telegram.moderators (2): no draft could be decided, got 3"),
    ("[telegram]\nmoderators_chat = -100\nmoderators = [1, 1, 2]\n[moderation]\nvotes = 3\n",
     "moderation.votes must be at most the number of telegram.moderators (2)"),
    ("[telegram]\nmoderators_chat = -100\nmoderators = [1, 2]\n[moderation]\nfast_approvers = [3]\n",
     "moderation.fast_approvers must be among telegram.moderators (3 is not one), got [3]"),
    ("[telegram]\nchannels = ['']\n", "telegram.channels must be \"@username\" or numeric ids, each once ('' is not"),
    ("[telegram]\nchannels = ['buhurt']\n", "telegram.channels must be \"@username\" or numeric ids, each once"),
    ("[telegram]\nchannels = ['@buhurt', '@Buhurt']\n", "each once ('@Buhurt' twice)"),
    ("[telegram]\nchannels = [-1001, '-1001']\n", "each once ('-1001' twice)"),
    ("[filter]\npatterns = ['спам|']\n", "filter.patterns must be valid regular expressions; 'спам|' matches empty"),
    ("[vk]\ngroups = ['bugurt_thread', 'vk.com/bugurt thread']\n",
     "vk.groups must be VK community short names, numeric ids or vk.com links ('vk.com/bugurt thread' is not one)"),
    ("[vk]\ngroups = ['']\n", "vk.groups must be VK community short names, numeric ids or vk.com links ('' is not"),
    # the same community twice was scraped twice every run, as two channels would publish twice
    ("[vk]\ngroups = ['bugurt_thread', 'https://vk.com/Bugurt_Thread']\n",
     "vk.groups must be VK community short names, numeric ids or vk.com links, each once"
     " ('https://vk.com/Bugurt_Thread' twice)"),
    ("[vk]\ngroups = ['club57536014', '57536014']\n", "each once ('57536014' twice)"),
])
def test_bad_config_gives_one_line_naming_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert message in str(info.value) and str(path) in str(info.value)
    assert str(info.value).count(", got ") <= 1           # the value once, not twice
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("chat", ["mods", "https://t.me/+AbCdEf123", "@my mods", ""])
def test_a_moderators_chat_that_is_no_chat_is_refused_naming_it(tmp_path, chat):
    """telegram.moderators_chat as an invite link, or a name without its "@", was accepted: every
    draft then failed to reach the moderators (an ERROR line at each pool run) and stayed pending."""
    path = write(tmp_path, f"[telegram]\nmoderators_chat = '{chat}'\nmoderators = [1]\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "telegram.moderators_chat must be" in str(info.value) and str(path) in str(info.value), info.value


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path, environ={})


def test_tokens_from_environment_never_shown(tmp_path, caplog):
    token = "123456789:" + "fake" * 9  # shaped like a bot token, made up
    path = write(tmp_path, "[telegram]\nchannels = ['@chan']\n")
    settings = load_settings(path, environ={"BUHURT_TELEGRAM_TOKEN": token, "BUHURT_VK_TOKEN": "vk-secret-value"})
    assert settings.telegram.token.reveal() == token
    assert settings.vk.token.reveal() == "vk-secret-value"
    assert token not in repr(settings) and "vk-secret-value" not in repr(settings)
    assert str(Secret("x")) == "Secret('***')"
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "POST https://host/bot%s/getMe vk=%s",
                               (token, "vk-secret-value"), None)
    REDACTOR.filter(record)
    assert token not in record.getMessage() and "vk-secret-value" not in record.getMessage()


@pytest.mark.parametrize("table,key,value", [
    ("telegram", "token", '["1234:SECRETTOKENABC"]'), ("vk", "token", "98765432101234"),
    ("vk", "community_token", '{a = "SECRETVKCOMM"}'),
])
def test_a_token_of_the_wrong_type_is_named_without_its_value(tmp_path, table, key, value):
    path = write(tmp_path, f"[{table}]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    message = str(error.value)
    assert f"{table}.{key} must be a string" in message and "value not shown" in message
    assert not any(secret in message for secret in ("SECRETTOKENABC", "98765432101234", "SECRETVKCOMM"))


@pytest.mark.parametrize("around", ["{}\n", "{}\r", " {}", "\t{} \r\n"])
def test_a_token_with_whitespace_around_it_is_the_token(tmp_path, around):
    """A token pasted with a line break or spaces (a secrets file with CRLF lines, `export T=" ..."`):
    the line break made every Bot API request an invalid URL, retried as 'unreachable' for
    telegram.startup_wait_seconds; a space made Telegram reject it. A token never holds whitespace."""
    token = "123456789:" + "fake" * 9  # shaped like a bot token, made up
    vk_token = around.format("vk-secret-value").encode("unicode_escape").decode()
    path = write(tmp_path, f'[telegram]\nchannels = ["@chan"]\n[vk]\ntoken = "{vk_token}"\n')
    environ = {"BUHURT_TELEGRAM_TOKEN": around.format(token), "BUHURT_VK_COMMUNITY_TOKEN": around.format("vk-comm")}
    settings = load_settings(path, environ=environ)
    assert settings.telegram.token.reveal() == token
    assert settings.vk.token.reveal() == "vk-secret-value"
    assert settings.vk.community_token.reveal() == "vk-comm"


@pytest.mark.parametrize("inside", ["123456789:fake fake", "123456789:fake\nfake"])
def test_a_token_with_whitespace_inside_is_one_line_without_its_value(tmp_path, inside):
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, "[telegram]\nchannels = ['@chan']\n"), environ={"BUHURT_TELEGRAM_TOKEN": inside})
    message = str(error.value)
    assert "telegram.token (or BUHURT_TELEGRAM_TOKEN) holds a space or line break inside" in message
    assert "fake" not in message and "\n" not in message


def test_a_secret_is_scrubbed_whatever_its_case_and_a_token_shape_inside_a_url():
    from bot.secrets import RedactingFilter

    redactor = RedactingFilter()
    redactor.add("vk-Secret-Value")
    token = "7654321:" + "AbC" * 12  # shaped like a bot token, made up, never registered
    text = redactor.redact(f"bad url /bot{token.lower()}/sendmessage, access_token=VK-SECRET-VALUE")
    assert text == "bad url /bot***/sendmessage, access_token=***"


def test_logging_setup_redacts_in_real_handlers(tmp_path):
    log_file = tmp_path / "bot.log"
    load_settings(None, environ={"BUHURT_VK_TOKEN": "another-secret-token"})
    setup_logging("INFO", str(log_file))
    logging.getLogger("some.library").info("calling with access_token=%s", "another-secret-token")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text(encoding="utf-8")
    assert "access_token=***" in text and "another-secret-token" not in text
    logging.basicConfig(force=True)


def test_debug_logging_writes_no_request_url_and_its_query(tmp_path):
    """log.level = DEBUG: urllib3 (under requests, so vk_api) logged every request's path and query,
    and the VK bot long poll asks with its `key` in the query (it reads the community's incoming
    messages until it expires): the key went into the log at every poll."""
    import http.server
    import threading

    import requests

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            body = b'{"ts": "2", "updates": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log_file = tmp_path / "bot.log"
    try:
        setup_logging("DEBUG", str(log_file))
        key = "long-poll-key-of-the-community-0000"
        answer = requests.get(f"http://127.0.0.1:{server.server_port}/longpoll/42",
                              params={"act": "a_check", "key": key, "ts": "1", "wait": "1"}, timeout=30)
        assert answer.json()["ts"] == "2"
        logging.getLogger("bot.test").debug("debug lines are written")
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = log_file.read_text(encoding="utf-8")
    finally:
        logging.basicConfig(force=True)
        server.shutdown()
        server.server_close()
    assert "debug lines are written" in text and key not in text


def test_a_token_in_the_file_that_the_environment_replaces_is_said_without_either_value(tmp_path):
    """telegram.token in config.toml and another BUHURT_TELEGRAM_TOKEN: the file's token was ignored
    without a word (a token renewed in the file while the old one stayed in secrets.env: 'rejected the
    bot token', and the file held the right one). Now a WARNING names the key and the variable."""
    in_file, in_env = "111111:" + "file" * 9, "222222:" + "envv" * 9
    path = write(tmp_path, f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[telegram]\ntoken = "{in_file}"\n'
                           f'channels = ["@chan"]\n[vk]\ntoken = "same-vk-token"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BUHURT_TELEGRAM_TOKEN": in_env, "BUHURT_VK_TOKEN": "same-vk-token"}
    result = subprocess.run([sys.executable, "-m", "bot", "--config", str(path), "doctor", "--quick"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, result.stderr   # vk.token: the same in both, nothing to say
    assert "telegram.token" in warnings[0] and "BUHURT_TELEGRAM_TOKEN" in warnings[0] and str(path) in warnings[0]
    for secret in (in_file, in_env, "file" * 9, "envv" * 9):
        assert secret not in result.stdout + result.stderr


def test_a_token_only_in_the_environment_without_channels_is_named_as_the_environments(tmp_path):
    """BUHURT_TELEGRAM_TOKEN exported (a shell that loaded secrets.env) and a config.toml without
    Telegram: every command stopped with 'telegram.channels must be at least one channel ... when a
    token is set', and the file held no token. Now the line names where a token comes from."""
    path = write(tmp_path, "[corpus]\nseed_with_sample = false\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={"BUHURT_TELEGRAM_TOKEN": "123456789:" + "fake" * 9})
    message = str(error.value)
    assert "telegram.channels must be" in message and "BUHURT_TELEGRAM_TOKEN" in message and "fake" not in message


@pytest.mark.parametrize("gpu, expected", [(True, "cuda"), (False, "cpu")])
def test_device_auto_trains_on_the_gpu_when_torch_sees_one(tmp_path, monkeypatch, gpu, expected):
    import torch

    from bot.app import retrain_plan
    from bot.context import TrainPaths
    from model.distributed import device_name as resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    settings = load_settings(write(tmp_path, "[train]\ndevice = 'auto'\n[retrain]\nkeep_runs = 3\n"), environ={})
    plan = retrain_plan(settings, TrainPaths.under(tmp_path))
    assert plan.device == expected and plan.keep_runs == 3
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda") == "cuda"


@pytest.mark.parametrize("log_file, what", [
    ("{data}/buhurt.sqlite3", "the database"),
    ("{data}/buhurt.sqlite3-wal", "the database"),
    ("{config}", "the config file itself"),
    ("{data}/backups/copy.sqlite3", "a SQLite database"),
])
def test_log_file_never_writes_into_the_database_or_the_config(tmp_path, capsys, log_file, what):
    # log.file = the database's path appended log lines to the live database ("file is not a
    # database" at the next start: a fresh install's first line made it one); the config's own path
    # appended them to config.toml, which then failed to parse
    from corpus.db import open_db

    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    open_db(data / "buhurt.sqlite3").close()
    (data / "backups").mkdir()
    open_db(data / "backups" / "copy.sqlite3").close()
    path = log_file.format(data=data, config=config)
    config.write_text(f'[paths]\ndata_dir = "{data}"\n[log]\nfile = "{path}"\n', encoding="utf-8")
    kept = {p: p.read_bytes() for p in [config, data / "buhurt.sqlite3", data / "backups" / "copy.sqlite3"]}
    code, out, err = run_cli(capsys, "--config", str(config), "corpus", "stats")
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "log.file" in lines[0] and what in lines[0], err
    assert str(config) in lines[0]
    assert {p: p.read_bytes() for p in kept} == kept


@pytest.mark.parametrize("name, said", [
    ("afile/x.log", "{afile} is a file, not a folder"),
    ("folder", "(Is a directory)"),
])
def test_a_log_file_that_cannot_be_opened_says_why_in_one_line(tmp_path, capsys, name, said):
    # a file where its folder should be said "(File exists)": true of the file, not what is wrong
    (tmp_path / "afile").write_text("notes\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[log]\nfile = "{tmp_path / name}"\n',
                      encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(config), "corpus", "stats")
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "log.file" in lines[0], err
    assert said.format(afile=tmp_path / "afile") in lines[0]
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "notes\n"


def test_a_path_key_starting_with_a_tilde_is_under_the_home_folder_not_a_folder_named_tilde(tmp_path, capsys,
                                                                                          monkeypatch,
                                                                                          tiny_corpus_file):
    """paths.data_dir = "~/buhurt" (as an operator writes it for a shell) made a folder named '~' in the
    current folder, where the database, checkpoints and backups went; the service found none of the
    files the operator put under their home."""
    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    path = write(tmp_path, '[paths]\ndata_dir = "~/buhurt"\n[log]\nfile = "~/logs/buhurt.log"\n'
                           '[backup]\nfolder = "~/copies"\n')
    settings = load_settings(path, environ={})
    assert settings.data_dir == home / "buhurt" and settings.database == home / "buhurt" / "buhurt.sqlite3"
    assert settings.backup_dir == home / "copies" and settings.log.file == str(home / "logs" / "buhurt.log")
    code, _, err = run_cli(capsys, "--config", str(path), "corpus", "import", str(tiny_corpus_file))
    assert code == 0, err
    assert (home / "buhurt" / "buhurt.sqlite3").is_file() and not (elsewhere / "~").exists()

    unknown = write(tmp_path, '[paths]\ndatabase = "~nosuchuser-buhurt/db.sqlite3"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(unknown, environ={})
    assert "paths.database" in str(info.value) and "'~nosuchuser-buhurt/db.sqlite3'" in str(info.value)


def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Windows Notepad (and other editors) may save UTF-8 with a byte order mark: the file looked
    right, and buhurt stopped with 'malformed TOML: Invalid statement (at line 1, column 1)'."""
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + '[paths]\ndata_dir = "/srv/мемы"\n'.encode("utf-8"))
    assert load_settings(path, environ={}).paths.data_dir == "/srv/мемы"
