"""docs/cli.md: every `buhurt` command's --help, generated (bot/cli_reference.py) and kept in sync."""
from __future__ import annotations

import click

from bot.cli_reference import PAGE, commands, main, render
from tests.helpers import ROOT


def test_the_cli_reference_is_what_the_generator_writes():
    assert PAGE.read_text(encoding="utf-8") == render(), "docs/cli.md is stale: run python -m bot.cli_reference"


def test_every_command_and_flag_is_on_the_page():
    page = render()
    paths = [path for path, _ in commands()]
    assert ("buhurt", "models", "activate") in paths and ("buhurt", "corpus", "import-telegram") in paths
    for path, command in commands():
        section = page.split(f"## `{' '.join(path)}`\n", 1)[1].split("\n## ", 1)[0]
        assert f"Usage: {' '.join(path)} " in section
        for param in command.params:
            shown = [param.human_readable_name] if isinstance(param, click.Argument) else param.opts
            for flag in shown:
                assert flag in section, (path, flag)


def test_the_operators_table_names_every_command():
    table = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8").split("## CLI reference", 1)[1]
    for path, _ in commands():
        if len(path) == 2:
            assert f"`{' '.join(path)}" in table, f"docs/operating.md's table has no row for {' '.join(path)}"


def test_check_says_when_the_page_is_stale(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text("# CLI reference\n", encoding="utf-8")
    monkeypatch.setattr("bot.cli_reference.PAGE", stale)
    assert main(["--check"]) == 1 and "stale" in capsys.readouterr().err
    assert main([]) == 0 and main(["--check"]) == 0
