"""Structure report: lines per package, the longest functions, and the import edges between packages.

    python scripts/structure_report.py [--top 15] [--root .]

Reads the source with ast (nothing is imported or run). Counts physical lines of .py files in the
five packages (bot, jobs, model, corpus, common) and tests/. An import edge A -> B is counted once per module
of A that imports anything from B (module level or inside a function).
"""
from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

PACKAGES = ("bot", "jobs", "model", "corpus", "common")


def modules(root: Path, package: str):
    yield from sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)


def functions(tree: ast.AST, prefix: str):
    """(qualified name, lines) for every def, nested ones included."""
    stack = [(tree, prefix)]
    while stack:
        node, name = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = f"{name}.{child.name}"
                yield qual, child.end_lineno - child.lineno + 1
                stack.append((child, qual))
            elif isinstance(child, ast.ClassDef):
                stack.append((child, f"{name}.{child.name}"))
            else:
                stack.append((child, name))


def imported_packages(tree: ast.AST, own: str) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for n in names:
            top = n.split(".")[0]
            if top in PACKAGES and top != own:
                found.add(top)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = ap.parse_args()
    lines: Counter = Counter()
    files: Counter = Counter()
    edges: Counter = Counter()
    longest = []
    for package in (*PACKAGES, "tests"):
        for path in modules(args.root, package):
            text = path.read_text(encoding="utf-8")
            lines[package] += text.count("\n")
            files[package] += 1
            tree = ast.parse(text)
            rel = path.relative_to(args.root).with_suffix("").as_posix().replace("/", ".")
            if package != "tests":
                longest.extend((n, name) for name, n in functions(tree, rel))
                for other in imported_packages(tree, package):
                    edges[(package, other)] += 1
    print("lines per package")
    for package in (*PACKAGES, "tests"):
        print(f"  {package:<7} {lines[package]:>6} lines in {files[package]:>3} files")
    longest.sort(reverse=True)
    over = sum(1 for n, _ in longest if n > 80)
    print(f"\nlongest functions ({over} over 80 lines)")
    for n, name in longest[: args.top]:
        print(f"  {n:>4}  {name}")
    print("\nimport edges between packages (modules of A importing B)")
    for (a, b), n in sorted(edges.items()):
        print(f"  {a:>6} -> {b:<7} {n:>3}")
    cycles = [(a, b) for (a, b) in edges if (b, a) in edges and a < b]
    print(f"  package cycles: {', '.join(f'{a}<->{b}' for a, b in cycles) or 'none'}")


if __name__ == "__main__":
    main()
