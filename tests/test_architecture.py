"""The dependency rule (docs/architecture.md), checked by walking every import with ast."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.statuses import DraftStatus
from corpus.store import drafts

ROOT = Path(__file__).resolve().parent.parent
OURS = {"bot", "model", "corpus", "jobs", "common"}
FORBIDDEN = {
    "common": {"bot", "model", "corpus", "jobs"},   # the leaf: what model/ and corpus/ both use
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
    ("common", "from corpus.outputs import atomic_write_text", "corpus"),
    ("common", "import model.files", "model"),
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
    "def f():\n    from corpus.store.model_versions import promote\n",
])
def test_store_rule_catches_a_violation(tmp_path, line):
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "bad.py").write_text(line + "\n", encoding="utf-8")
    assert [p.split(":")[0] for p in store_imports(tmp_path)] == ["bot/bad.py"]


# ---- no import cycle between modules, no function over MAX_FUNCTION_LINES --------------------------

MAX_FUNCTION_LINES = 80


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four packages (a package is its __init__)."""
    found = {}
    for package in sorted(OURS):
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def statement_modules(node: ast.Import | ast.ImportFrom, name: str, is_package: bool, known: set[str]) -> list[str]:
    """The dotted modules one import statement of module `name` names (`from pkg import module`
    names the module; a relative import is made absolute)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names]


def nearest_module(dotted: str, known: set[str]) -> str:
    """The module itself, else the nearest package above it ('' when none of ours)."""
    while dotted and dotted not in known:
        dotted = dotted.rpartition(".")[0]
    return dotted


def module_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that module `name` imports, anywhere in it (function-level imports included)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found = (nearest_module(dotted, known) for dotted in statement_modules(node, name, is_package, known))
            targets.update(module for module in found if module and module != name)
    return targets


def import_cycles(root: Path = ROOT) -> list[list[str]]:
    """Each strongly connected group of two or more modules (Tarjan), sorted."""
    files = module_names(root)
    graph = {name: module_imports(name, path, set(files)) for name, path in files.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def long_functions(root: Path = ROOT, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """'path:line name (N lines)' for every def over `limit` lines (nested defs and methods included)."""
    found = []
    for path in module_names(root).values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return sorted(found)


def test_no_import_cycle_between_modules():
    assert import_cycles() == []


def test_no_function_over_80_lines():
    assert long_functions() == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in OURS:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_an_import_cycle_is_caught_even_through_a_function_level_or_relative_import(tmp_path):
    root = _tree(tmp_path, {
        "bot/a.py": "from bot import b\n",
        "bot/b.py": "def later():\n    from bot.sub.c import f\n",
        "bot/sub/c.py": "from .. import a\n",
        "jobs/d.py": "import jobs.e\n",
        "jobs/e.py": "from . import d\n",
        "model/f.py": "import bot.a\n",          # into a cycle, not part of one
    })
    assert import_cycles(root) == [["bot.a", "bot.b", "bot.sub.c"], ["jobs.d", "jobs.e"]]


def test_a_long_function_is_caught(tmp_path):
    def body(lines: int, indent: str) -> str:
        return "".join(f"{indent}x{i} = {i}\n" for i in range(lines))

    root = _tree(tmp_path, {
        "corpus/fits.py": "def fits():\n" + body(MAX_FUNCTION_LINES - 1, "    "),             # 80 lines
        "corpus/over.py": "class K:\n    def over(self):\n" + body(MAX_FUNCTION_LINES, "        "),  # 81
    })
    assert long_functions(root) == ["corpus/over.py:2 over (81 lines)"]


def test_model_and_corpus_may_use_the_common_leaf(tmp_path):
    for name in FORBIDDEN:
        (tmp_path / name).mkdir()
    for package in ("model", "corpus", "jobs", "bot"):
        (tmp_path / package / "ok.py").write_text("from common.files import atomic_path\n", encoding="utf-8")
    assert violations(tmp_path) == []


def test_the_draft_state_machine_names_every_draft_status_and_nothing_else():
    diagram = drafts.__doc__.split("\n\n")[1]             # corpus/store/drafts.py's state machine
    words = re.sub(r"\([^)]*\)|^[a-z]+ drafts:", " ", diagram, flags=re.MULTILINE)
    assert set(re.findall(r"[a-z_]+", words)) == {s.value for s in DraftStatus}


# ---- test modules import their doubles from tests/fakes and helpers, never from another test module ----

def cross_test_imports(root: Path = ROOT) -> list[str]:
    """'path:line imports module' for every import of a test_* module in tests/ (at any level)."""
    def is_test_module(dotted: str) -> bool:
        return any(part.startswith("test_") for part in dotted.split(".")[1:])

    found = []
    for path in sorted((root / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = ("tests." if node.level else "") + (node.module or "")
                names = [f"{module.rstrip('.')}.{alias.name}" for alias in node.names]
            found += [f"{path.relative_to(root)}:{node.lineno} imports {name}" for name in names
                      if name.startswith("tests.") and is_test_module(name)]
    return found


def test_no_test_module_imports_another():
    assert cross_test_imports() == []


@pytest.mark.parametrize("line", [
    "from tests.test_jobs import Moderators", "import tests.test_startup", "from tests import test_vk_wall",
    "from .test_retrain_nightly import config", "def f():\n    from tests.test_models_cli import variant\n",
    "from tests.jobs.test_service import Moderators",
])
def test_a_test_module_importing_another_is_caught(tmp_path, line):
    (tmp_path / "tests" / "fakes").mkdir(parents=True)
    (tmp_path / "tests" / "test_bad.py").write_text(line + "\n", encoding="utf-8")
    (tmp_path / "tests" / "fakes" / "good.py").write_text("from tests.fakes.fake_vk import FakeVk\n"
                                                          "from tests.helpers import run_cli\n", encoding="utf-8")
    assert [p.split(":")[0] for p in cross_test_imports(tmp_path)] == ["tests/test_bad.py"]


# ---- tests/ mirrors the packages: tests/model/ tests model/, tests/bot/telegram/ bot/telegram/ -------------
# Only the tests of the whole (the layering, the thin slice, the deployment files, scripts/) sit at the top.
WHOLE = {"test_architecture.py", "test_thin_slice.py", "test_deployment_files.py", "test_check_sample_corpus.py"}


def test_test_folders_mirror_the_packages():
    tests = ROOT / "tests"
    folders = [p for p in tests.rglob("*") if p.is_dir() and p.name not in ("fakes", "data", "__pycache__")
               and "data" not in p.relative_to(tests).parts and "__pycache__" not in p.parts]
    assert folders
    for folder in folders:
        rel = folder.relative_to(tests)
        assert (ROOT / rel / "__init__.py").is_file(), f"tests/{rel} mirrors no package of ours"
        assert (folder / "__init__.py").is_file(), f"tests/{rel} needs an __init__.py"
    assert {p.name for p in tests.glob("test_*.py")} == WHOLE


# ---- a function-level import only for what loads torch, telegram or vk_api ----------------------------
# Lazy imports keep `buhurt --help`, the CLI's light commands and the pure modules free of the heavy
# libraries; everything else is imported at the top, where a reader looks. matplotlib and sklearn
# count as heavy too: each takes seconds to import (pyplot 1.8 s, sklearn 3.6 s against telegram's
# 0.5 s on the 2-core CI machine) and only plots and the ranker need them. An import guarded by
# `except ImportError` (a one-line error for a broken install) may stay where its guard is.

HEAVY = {"torch", "telegram", "vk_api", "matplotlib", "sklearn"}


def _placed_imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import with its place: 'module' (runs on import), 'function', 'guarded' (in a function,
    inside a try that catches ImportError) or 'typing' (under `if TYPE_CHECKING:`, never runs)."""
    found: list[tuple[ast.Import | ast.ImportFrom, str]] = []

    def catches_import_error(handler: ast.ExceptHandler) -> bool:
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)

    def visit(node: ast.AST, place: str) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, place))
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, "typing")
            for child in node.orelse:
                visit(child, place)
            return
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and place == "module":
            place = "function"
        elif isinstance(node, ast.Try) and place == "function" and any(map(catches_import_error, node.handlers)):
            for child in node.body:
                visit(child, "guarded")
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, place)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, place)

    visit(tree, "module")
    return found


def needless_lazy_imports(root: Path = ROOT) -> list[str]:
    """'path:line statement' for each function-level import of the four packages that loads none of
    HEAVY, directly or through a module of ours that imports one of them when it is imported."""
    files = module_names(root)
    known = set(files)
    placed = {name: _placed_imports(ast.parse(path.read_text(encoding="utf-8"))) for name, path in files.items()}

    def named(name: str, node: ast.Import | ast.ImportFrom) -> list[str]:
        return statement_modules(node, name, files[name].name == "__init__.py", known)

    heavy: dict[str, bool] = {}

    def loads_heavy(dotted: str) -> bool:   # importing `dotted` loads a HEAVY library
        if dotted.split(".")[0] in HEAVY:
            return True
        module = nearest_module(dotted, known)
        packages = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)] if module else []
        return any(is_heavy(package) for package in packages)   # a package's __init__ runs first

    def is_heavy(name: str) -> bool:
        if name not in heavy:
            heavy[name] = False   # while being decided (a package and its modules import each other)
            heavy[name] = any(loads_heavy(dotted) for node, place in placed[name] if place == "module"
                              for dotted in named(name, node))
        return heavy[name]

    return sorted(f"{files[name].relative_to(root)}:{node.lineno} {ast.unparse(node)}"
                  for name in files for node, place in placed[name]
                  if place == "function" and not any(loads_heavy(dotted) for dotted in named(name, node)))


def test_function_level_imports_are_only_for_torch_telegram_and_vk_api():
    assert needless_lazy_imports() == []


def test_a_needless_lazy_import_is_caught(tmp_path):
    root = _tree(tmp_path, {
        "model/net.py": "import torch\n",
        "model/pure.py": "import json\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
        "jobs/uses_net.py": "from model.net import *\n",                  # heavy through model.net
        "bot/cli.py": ("def a():\n    import telegram.error\n    from jobs import uses_net\n    import matplotlib\n"
                       "def b():\n    from model.pure import X\n"                              # flagged
                       "def c():\n    try:\n        import pymorphy3\n    except ImportError:\n        pass\n"
                       "class K:\n    async def d(self):\n        import datetime as dt\n"  # flagged
                       "    def e(self):\n        from ..jobs.uses_net import f\n        from . import other\n"),
        "bot/other.py": "def f():\n    from jobs.uses_net import g\n",
    })
    assert needless_lazy_imports(root) == ["bot/cli.py:14 import datetime as dt", "bot/cli.py:17 from . import other",
                                           "bot/cli.py:6 from model.pure import X"]
