"""The dependency rule (docs/architecture.md), checked by walking every import with ast."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"bot", "model", "corpus", "jobs"}
FORBIDDEN = {
    "model": {"bot", "corpus", "jobs"},
    "corpus": {"bot", "model", "jobs"},
    "jobs": {"bot"},
    "bot": set(),
}


def imported_packages(source: str) -> set[str]:
    """Top-level packages of ours imported anywhere in `source` (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def violations(root: Path = ROOT) -> list[str]:
    problems = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            bad = imported_packages(path.read_text(encoding="utf-8")) & forbidden
            problems += [f"{path.relative_to(root)} imports {name}" for name in sorted(bad)]
    return problems


def test_dependency_rule_holds():
    assert violations() == []


@pytest.mark.parametrize("package, line, culprit", [
    ("model", "from corpus.store import posts", "corpus"),
    ("corpus", "import model.sample", "model"),
    ("jobs", "from bot.config import Settings", "bot"),
    ("model", "def f():\n    import jobs.pool\n", "jobs"),
])
def test_dependency_rule_catches_a_violation(tmp_path, package, line, culprit):
    for name in FORBIDDEN:
        (tmp_path / name).mkdir()
    (tmp_path / package / "bad.py").write_text(line + "\n", encoding="utf-8")
    assert violations(tmp_path) == [f"{package}/bad.py imports {culprit}"]


def test_help_does_not_import_torch():
    code = ("import sys\nfrom bot.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
            "print('TELEGRAM' if 'telegram' in sys.modules else 'NO-TELEGRAM')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "NO-TORCH" in out and "NO-TELEGRAM" in out
    assert "corpus" in out and "run" in out  # the help text itself was printed


def store_imports(root: Path = ROOT) -> list[str]:
    """Modules of bot/ that import corpus.store (handlers, the CLI and the scheduler go through jobs/)."""
    problems = []
    for path in sorted((root / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            if any(name == "corpus.store" or name.startswith("corpus.store.") for name in names):
                problems.append(f"{path.relative_to(root)}:{node.lineno}")
    return problems


def test_bot_reaches_the_store_only_through_jobs():
    assert store_imports() == []


@pytest.mark.parametrize("line", [
    "from corpus.store import drafts", "import corpus.store.posts", "from corpus import store",
    "def f():\n    from corpus.store.models import promote\n",
])
def test_store_rule_catches_a_violation(tmp_path, line):
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "bad.py").write_text(line + "\n", encoding="utf-8")
    assert [p.split(":")[0] for p in store_imports(tmp_path)] == ["bot/bad.py"]
