"""evaluate_text: bits and nats per character on any text file, and its errors."""
from __future__ import annotations

import math

import pytest

from model.errors import ModelError
from model.evaluate import evaluate_text

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bits_per_char(tiny_run, tmp_path):
    txt, _, _, result = tiny_run
    r = evaluate_text(result.best_path, txt)
    assert r["bits_per_char"] == pytest.approx(r["nats_per_char"] / math.log(2))
    assert r["chars"] == len(txt.read_text(encoding="utf-8")) and r["skipped"] == 0
    assert r["nats_per_char"] < math.log(30)        # better than uniform
    other = tmp_path / "other.txt"
    other.write_text("ТЫ ИДЁШЬ В ЛЕС\r\n@\r\nZZZ\n", encoding="utf-8")
    r2 = evaluate_text(result.best_path, other)
    assert r2["skipped"] == 3 and r2["unknown_chars"] == ["Z"]


def test_errors(tiny_run, tmp_path):
    ck = tiny_run[3].best_path
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "cp1251.txt").write_bytes("ХЛЕБ".encode("cp1251"))
    for path, needle in ((tmp_path / "empty.txt", "empty"), (tmp_path / "cp1251.txt", "UTF-8"),
                         (tmp_path / "nope.txt", "does not exist"), (tmp_path, "directory")):
        with pytest.raises(ModelError, match=needle):
            evaluate_text(ck, path)
    with pytest.raises(ModelError, match="does not exist"):
        evaluate_text(tmp_path / "nope.pt", tiny_run[0])
