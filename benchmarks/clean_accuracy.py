"""Cleaning accuracy on a labelled Telegram export: precision and recall of what reaches the
training text, the learned signatures, and checks that no signature or link text is exported.

Labels (benchmarks/labels/export-sample.tsv: page, message id, label in buhurt | two_line | not)
were given by hand to every message of the real export pages in
../shared/data/bugurtthread/export-sample/ (texts are not in this repository). A message counts as
a positive when labelled buhurt or two_line; it reaches the training text when cleaning keeps it,
or drops it as a duplicate or near duplicate of a post that is kept (its text is there once).

    python benchmarks/clean_accuracy.py [--export DIR] [--labels TSV] [--show]

--show prints the texts of the misclassified messages (for a developer's eyes; never commit them).
Without ../shared it says so and exits 0.
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus.rules import CleanOptions, has_link  # noqa: E402
from corpus.cleaning import clean_corpus  # noqa: E402
from corpus.db import open_db  # noqa: E402
from corpus.export import export_training_text  # noqa: E402
from corpus.signatures import line_key  # noqa: E402
from corpus.telegram_export import import_telegram_export  # noqa: E402

DEFAULT_EXPORT = ROOT.parent / "shared" / "data" / "bugurtthread" / "export-sample"
POSITIVE = {"buhurt", "two_line"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--labels", type=Path, default=ROOT / "benchmarks" / "labels" / "export-sample.tsv")
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()
    if not args.export.is_dir():
        print(f"{args.export}: not found (the labelled pages live in ../shared); nothing measured")
        return
    with args.labels.open(encoding="utf-8") as handle:
        labels = {(r["page"], r["message_id"]): r["label"] for r in csv.DictReader(handle, delimiter="\t")}
    pages = sorted({page for page, _ in labels})
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "accuracy.sqlite3")
        started = time.perf_counter()
        page_of: dict[int, str] = {}
        for page in pages:
            result = import_telegram_export(db, args.export / f"{page}.html", community="export-sample")
            for (post_id,) in db.execute("SELECT id FROM posts WHERE id NOT IN (%s)" % ",".join(
                    str(i) for i in page_of) if page_of else "SELECT id FROM posts"):
                page_of[post_id] = page
            print(f"{page}.html: {result.messages} messages imported")
        report = clean_corpus(db, CleanOptions())
        elapsed = time.perf_counter() - started
        rows = db.execute("SELECT id, external_id, excluded_reason, text, clean_text FROM posts").fetchall()
        tp = fp = fn = tn = copies = 0
        by_label: Counter = Counter()
        kept_by_label: Counter = Counter()
        misses: list[tuple[str, str, str, str]] = []
        for post_id, external_id, reason, text, clean in rows:
            label = labels.get((page_of[post_id], external_id))
            if label is None:
                continue
            kept = reason is None or reason in ("duplicate", "near_duplicate")
            copies += reason in ("duplicate", "near_duplicate")
            by_label[label] += 1
            kept_by_label[label] += kept
            positive = label in POSITIVE
            tp += positive and kept
            fp += (not positive) and kept
            fn += positive and not kept
            tn += (not positive) and not kept
            if positive != kept:
                misses.append((page_of[post_id], external_id, label, reason or "kept", text, clean))
        out = Path(tmp) / "train.txt"
        export_training_text(db, out)
        exported = out.read_text(encoding="utf-8")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    print(f"labelled messages: {sum(by_label.values())} ({', '.join(f'{k} {v}' for k, v in sorted(by_label.items()))})")
    print(f"reaching the training text: {tp + fp} (true {tp}, false {fp}; {copies} of them as a copy kept once);"
          f" dropped: {fn + tn} (genuine {fn})")
    print(f"precision: {precision:.2%}  (target >= 97%: {'met' if precision >= 0.97 else 'NOT met'})")
    print(f"recall:    {recall:.2%}  (target >= 97%: {'met' if recall >= 0.97 else 'NOT met'})")
    for label in ("buhurt", "two_line"):
        if by_label[label]:
            kept, total = kept_by_label[label], by_label[label]
            print(f"  recall of {label}: {kept / total:.2%} ({kept} of {total})")
    print(f"import + clean: {elapsed:.1f} s")
    print("learned signatures:")
    for community, sigs in report.signatures.items():
        for where, key, count in sigs:
            print(f"  [{community}] {where:<5} {count:>5}  {key}")
    keys = {key for sigs in report.signatures.values() for _, key, _ in sigs}
    lines = [line for line in exported.split("\n") if line.strip()]
    sig_lines = sum(1 for line in lines if line_key(line) in keys)
    # any "](": a target with a space ("[🍺](video_files/sticker (2).webm)") is markup too
    link_lines = sum(1 for line in lines if has_link(line) or "](" in line)
    print(f"exported training text: {len(lines)} lines; signature lines: {sig_lines};"
          f" lines with a link or link markup: {link_lines}"
          f" (target 0: {'met' if sig_lines == link_lines == 0 else 'NOT met'})")
    print(f"stripped: {dict(report.stripped)}")
    print("misclassified (page, message id, label, cleaning decision):")
    for page, external_id, label, decision, text, clean in sorted(misses):
        print(f"  {page} {external_id} {label:<8} {decision}")
        if args.show:
            print("    raw:   " + text.replace("\n", " ⏎ ")[:400])
            print("    clean: " + (clean or "").replace("\n", " ⏎ ")[:400])


if __name__ == "__main__":
    main()
