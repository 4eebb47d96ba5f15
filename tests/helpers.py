"""Plain helpers the tests import (`from tests.helpers import ...`); fixtures live in conftest.py."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TINY_POSTS = [
    "ПРИХОДИШЬ В ШКОЛУ\n@\nТАМ КОНТРОЛЬНАЯ\n@\nТЫ НЕ ГОТОВ",
    "ПОКУПАЕШЬ ХЛЕБ\n@\nОН ЧЁРСТВЫЙ\n@\nИДЁШЬ ОБРАТНО\n@\nМАГАЗИН ЗАКРЫТ",
    "ВКЛЮЧАЕШЬ КОМПЬЮТЕР\n@\nОБНОВЛЕНИЕ 1 ИЗ 47\n@\nИДЁШЬ СПАТЬ",
    "МАМКА ЗОВЁТ ЕСТЬ\n@\nПРИХОДИШЬ НА КУХНЮ\n@\nТАМ ГРЕЧКА\n@\nОПЯТЬ",
    "БАТЯ ЧИНИТ КРАН\n@\nКРАН ТЕЧЁТ СИЛЬНЕЕ\n@\nБАТЯ ДОВОЛЕН",
]


def varied_posts(n: int = 80, seed: int = 0) -> list[str]:
    """`n` distinct posts in the genre's format, built from the lines of TINY_POSTS."""
    lines = sorted({line for post in TINY_POSTS for line in post.split("\n") if line != "@"})
    rnd = random.Random(seed)
    posts: list[str] = []
    while len(posts) < n:
        post = "\n@\n".join(rnd.sample(lines, rnd.randint(3, 5)))
        if post not in posts:
            posts.append(post)
    return posts


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`buhurt ARGV` through the real entry point: (exit code, stdout, stderr)."""
    from bot.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    return info.value.code or 0, out.out, out.err
