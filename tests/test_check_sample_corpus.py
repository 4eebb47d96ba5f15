"""scripts/check_sample_corpus.py on tiny inputs: a 60-character copy is found, 59 is not, case and
spacing do not hide a copy, duplicates within the sample are reported, an absent real corpus is skipped."""
from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_sample_corpus", ROOT / "scripts/check_sample_corpus.py")
check_sample_corpus = importlib.util.module_from_spec(_spec)
sys.modules["check_sample_corpus"] = check_sample_corpus  # dataclasses look their module up
_spec.loader.exec_module(check_sample_corpus)

LONG = "ПРОСЫПАЕШЬСЯ В ПОНЕДЕЛЬНИК ОТ ТОГО ЧТО СОСЕД СВЕРЛИТ СТЕНУ РОВНО В СЕМЬ УТРА"  # 75 characters


def write(path: Path, posts: list[str]) -> Path:
    path.write_text("\n\n".join(posts) + "\n", encoding="utf-8")
    return path


def test_shared_run_of_sixty_is_a_hit_and_fifty_nine_is_not():
    canonical = check_sample_corpus.canonical
    sample = [canonical("ЗАГОЛОВОК\n@\n" + LONG[:60] + " ХВОСТ"), canonical("ДРУГОЕ\n@\n" + LONG[:59])]
    real = [canonical("НАЧАЛО " + LONG + "\n@\nКОНЕЦ")]
    hits = check_sample_corpus.shared_runs(sample, real, run=60)
    assert [(h.sample_index, h.other_index) for h in hits] == [(0, 0)]
    assert len(hits[0].shared) >= 60 and canonical(LONG[:60]) in hits[0].shared


def test_case_spacing_and_yo_do_not_hide_a_copy():
    canonical = check_sample_corpus.canonical
    real = [canonical(LONG.replace("Е", "Ё", 1))]
    sample = [canonical("  " + LONG.lower().replace(" ", "  ") + "  ")]
    assert check_sample_corpus.shared_runs(sample, real, run=60)


def test_longest_common_run():
    assert check_sample_corpus.longest_common_run("xxabcdyy", "zabcdz") == "abcd"
    assert check_sample_corpus.longest_common_run("abc", "xyz") == ""


def test_report_and_exit_status(tmp_path):
    sample = write(tmp_path / "sample.txt", ["ПЕРВЫЙ\n@\nПОСТ", "ВТОРОЙ\n@\n" + LONG, "первый\n@\nпост",
                                              "ТРЕТИЙ\n@\n" + LONG])
    real = write(tmp_path / "real.txt", ["ЧУЖОЙ\n@\n" + LONG[5:70]])
    out = io.StringIO()
    problems = check_sample_corpus.check(sample, [real, tmp_path / "absent.txt"], 60, out=out)
    report = out.getvalue()
    assert "4 posts" in report
    assert "HIT sample post 2 ~ real post 1" in report and "HIT sample post 4 ~ real post 1" in report
    assert "absent.txt: absent, skipped" in report
    assert "DUPLICATE sample post 3 = post 1" in report
    assert "OVERLAP sample post 4 ~ post 2" in report
    assert problems == 2 + 1 + 1


def test_clean_sample_passes(tmp_path, capsys):
    sample = write(tmp_path / "sample.txt", ["ПЕРВЫЙ\n@\nПОСТ", "ВТОРОЙ\n@\n" + LONG])
    real = write(tmp_path / "real.txt", ["СОВСЕМ\n@\nДРУГОЙ ПОСТ"])
    assert check_sample_corpus.main([str(real), "--sample", str(sample)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")


def test_bad_input_exits_2(tmp_path, capsys):
    assert check_sample_corpus.main(["--sample", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert check_sample_corpus.main(["--run", "0"]) == 2
