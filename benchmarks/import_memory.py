"""Peak memory (RSS) of importing a large corpus: a Telegram JSON export (`buhurt corpus
import-telegram`) and a text file (`buhurt corpus import`), each followed by the cleaning the
command runs, against a baseline tree (the code before issue 12) measured in the same run.

Each case runs in a fresh child process (python -c ..., PYTHONPATH = the tree measured) that
prints its own peak RSS (resource.getrusage(RUSAGE_SELF).ru_maxrss) at the end. The input is
synthetic (made-up buhurts of random words, ~600 characters each), written once per size.

    python benchmarks/import_memory.py [--mb 100] [--baseline-tree DIR] [--cases json,text]
    python benchmarks/import_memory.py --cases nested,largest,many --baseline-tree DIR   # hostile exports

Hostile cases (issue 26, point 13), the import alone (no cleaning), each child under an address-space
cap (--cap-gb, default 4; the old reader grew to 23.8 GB on `nested`):
  nested   a 195 KiB result.json holding 100,000 nested arrays;
  largest  the JSON export of --mb with one more message just under the importer's size limit
           (MAX_MESSAGE_SIZE, a text of ~1,000,000 characters), against `plain`, the same without it:
           the difference is what the largest message costs;
  many     40 such messages (77 MB): what a file of only the largest messages costs.

--baseline-tree: a checkout of the old code (e.g. `git worktree add /tmp/base <commit>`); without it
only the current tree is measured.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("КОТ ПРОСНУЛСЯ УТРОМ ПОШЁЛ НА РАБОТУ ТАМ НАЧАЛЬНИК ОПЯТЬ ЗАДЕРЖАЛИ ЗАРПЛАТУ СЫЧ ЕРОХА МАМКА БАТЯ "
         "ШКОЛА КОНТРОЛЬНАЯ ДВАЧ ТЯНОЧКА ПОДЛИВА МАРС ДОМОЙ ЕДЕШЬ АВТОБУС ОСТАНОВКА ДОЖДЬ ПИВО ДИВАН "
         "КОМПЬЮТЕР ИГРА ПРОИГРАЛ ВЫИГРАЛ ЗАБЫЛ ВСПОМНИЛ КУПИЛ ПРОДАЛ СЛОМАЛ ПОЧИНИЛ СОСЕД ЛИФТ ПОДЪЕЗД").split()

RUN_TEXT = """
import sys, time
from pathlib import Path
from corpus.db import open_db
from corpus.importer import import_text_file
from corpus.cleaning import clean_corpus
db = open_db(Path(sys.argv[2]))
t = time.perf_counter()
added, _ = import_text_file(db, sys.argv[1], community="bench")
try:
    report = clean_corpus(db, only_new=True)
except TypeError:
    report = clean_corpus(db)
import resource
print(f"{added} posts, {report.kept} kept, {time.perf_counter() - t:.0f} s")
print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
RUN_JSON = RUN_TEXT.replace("from corpus.importer import import_text_file",
                            "from corpus.telegram_export import import_telegram_export").replace(
    'added, _ = import_text_file(db, sys.argv[1], community="bench")',
    'added = import_telegram_export(db, sys.argv[1]).added')


RUN_IMPORT = """
import resource, sys, time
from pathlib import Path
from corpus.db import open_db
from corpus.errors import CorpusError
from corpus.telegram_export import import_telegram_export
db = open_db(Path(sys.argv[2]))
t = time.perf_counter()
try:
    outcome = f"{import_telegram_export(db, sys.argv[1]).added} posts"
except CorpusError as exc:
    outcome = "refused: " + str(exc).split(": ", 1)[-1][:70]
except MemoryError:
    outcome = "MemoryError at the address-space cap"
print(f"{outcome}, {time.perf_counter() - t:.1f} s")
print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
LARGEST_CHARS = 990_000  # a text just under the importer's MAX_MESSAGE_SIZE (1,000,000)


def write_hostile(folder: Path, plain: Path) -> dict[str, Path]:
    """nested: 100,000 nested arrays; largest: `plain` plus one message of LARGEST_CHARS characters."""
    depth = 100_000
    nested = folder / "nested" / "result.json"
    nested.parent.mkdir()
    nested.write_text('{"name": "X", "type": "public_channel", "messages": [' + "[" * depth + "]" * depth + "]}",
                      encoding="utf-8")
    largest = folder / "largest" / "result.json"
    largest.parent.mkdir()
    big = json.dumps({"id": 10**9, "type": "message", "date_unixtime": "1672567200",
                      "text": "БУГУРТ\n@\n" + "Я" * LARGEST_CHARS}, ensure_ascii=False)
    with plain.open("rb") as src, largest.open("wb") as out:
        data = src.read()
        out.write(data[:-2] + b"," + big.encode("utf-8") + b"]}")
    many = folder / "many" / "result.json"
    many.parent.mkdir()
    with many.open("w", encoding="utf-8") as out:
        out.write('{"name": "X", "type": "public_channel", "messages": [')
        out.write(",".join(big.replace('"id": 1000000000', f'"id": {i}') for i in range(1, 41)) + "]}")
    return {"nested": nested, "largest": largest, "plain": plain, "many": many}


def _cap(gigabytes: float):
    import resource

    limit = int(gigabytes * 1024 ** 3)
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def post(rng: random.Random) -> str:
    lines = []
    while sum(len(line) + 3 for line in lines) < 600:
        lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + f" {rng.randrange(10**6)}")
    return "\n@\n".join(lines)


def write_inputs(folder: Path, mb: float) -> tuple[Path, Path]:
    rng = random.Random(12)
    text_path, json_path = folder / "posts.txt", folder / "result.json"
    limit = int(mb * 1024 * 1024)
    with text_path.open("w", encoding="utf-8") as text, json_path.open("w", encoding="utf-8") as js:
        js.write('{"name": "BENCH", "type": "public_channel", "id": 1, "messages": [')
        size_t = size_j = 0
        i = 0
        while size_t < limit or size_j < limit:
            body = post(rng)
            if size_t < limit:
                chunk = body + "\n\n"
                text.write(chunk)
                size_t += len(chunk.encode("utf-8"))
            if size_j < limit:
                chunk = ("," if i else "") + json.dumps(
                    {"id": i + 1, "type": "message", "date": "2023-01-01T10:00:00",
                     "date_unixtime": str(1672567200 + i),
                     "text": [body + "\n\n", {"type": "text_link", "text": "BENCH", "href": "https://t.me/bench"}]},
                    ensure_ascii=False)
                js.write(chunk)
                size_j += len(chunk.encode("utf-8"))
            i += 1
        js.write("]}")
    return text_path, json_path


def measure(tree: Path, script: str, data: Path, workdir: Path, cap_gb: float | None = None) -> tuple[float, str]:
    db = workdir / f"bench-{time.monotonic_ns()}.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script, str(data), str(db)], cwd=tree, env=env,
                          capture_output=True, text=True, preexec_fn=_cap(cap_gb) if cap_gb else None)
    for leftover in workdir.glob(db.name + "*"):
        leftover.unlink()
    if done.returncode != 0:
        return float("nan"), "FAILED: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    lines = done.stdout.strip().splitlines()
    return int(lines[-1].split()[1]) / 1024, lines[-2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100)
    parser.add_argument("--baseline-tree", type=Path, default=None)
    parser.add_argument("--cases", default="json,text")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--cap-gb", type=float, default=4.0, help="address-space cap of the hostile cases")
    args = parser.parse_args()
    cases = args.cases.split(",")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        text_path, json_path = write_inputs(work, args.mb)
        sizes = {"text": text_path.stat().st_size / 2**20, "json": json_path.stat().st_size / 2**20}
        print(f"inputs: text file {sizes['text']:.1f} MB, JSON export {sizes['json']:.1f} MB"
              " (synthetic, ~600 chars a post)")
        trees = [("after", ROOT)] + ([("before", args.baseline_tree)] if args.baseline_tree else [])
        hostile = write_hostile(work, json_path) if {"nested", "largest", "many"} & set(cases) else {}
        for name, tree in trees:
            for case in cases:
                if case in hostile:
                    hostile_case(name, tree, case, hostile, work, args.cap_gb)
                    continue
                script, data = (RUN_JSON, json_path) if case == "json" else (RUN_TEXT, text_path)
                peak, out = measure(tree, script, data, work)
                print(f"{name:<6} {case:<4} peak RSS {peak:8.1f} MB = {peak / sizes[case]:4.2f}x the input   ({out})")


def hostile_case(name: str, tree: Path, case: str, hostile: dict[str, Path], work: Path, cap_gb: float) -> None:
    size = hostile[case].stat().st_size / 2**20
    peak, out = measure(tree, RUN_IMPORT, hostile[case], work, cap_gb)
    print(f"{name:<6} {case:<7} {size:6.1f} MB input: peak RSS {peak:8.1f} MB   ({out})")
    if case == "largest":
        base, out = measure(tree, RUN_IMPORT, hostile["plain"], work, cap_gb)
        message = (LARGEST_CHARS * 2) / 2**20  # its text in the file: 2 bytes a character
        print(f"{name:<6} plain   {hostile['plain'].stat().st_size / 2**20:6.1f} MB input: peak RSS {base:8.1f} MB"
              f"   ({out}); the largest message ({message:.1f} MB) costs {peak - base:+.1f} MB"
              f" = {(peak - base) / message:.1f}x its size")


if __name__ == "__main__":
    main()
