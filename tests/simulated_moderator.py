"""A simulated moderator with a known taste, deciding on drafts stored as the pool stores them (real
SQLite, the real decision records): the ranker's tests and benchmarks/ranker.py use it.

Each draft is a buhurt of 2 to 12 lines; about half of them lean on a few repeated words. Its
measures are drawn as the generator's would be for drafts that passed the screen (log-probability,
known-word share, shared run, grammar from 0.75 to 1, temperature) and its hand-set score is
jobs.pool.score of them, which knows the grammar measure but nothing else of the taste.

"lines" taste: approves a draft with 5 to 9 lines, few repeated words (at most 40% of its words
repeat an earlier one) and few grammar errors (grammar >= 0.85) 85% of the time, any other 15%. "random": approves half,
at random. Rejections are split between reject and regenerate; one approval in five is an edit.
"""
from __future__ import annotations

import random

import sqlite_utils

from corpus.store import drafts as draft_rows
from jobs.pool import Measures
from jobs.ranker import repeated_words

WORDS = ("ПРИХОДИШЬ ДОМОЙ ШКОЛА БАТЯ МАМКА КУХНЯ ГРЕЧКА КОНТРОЛЬНАЯ МАГАЗИН ХЛЕБ КОМПЬЮТЕР ОБНОВЛЕНИЕ "
         "ИДЁШЬ СПАТЬ ЗВОНИТ ДРУГ ГОВОРИТ ПОДЪЕЗД СОСЕД ДРЕЛЬ УТРО СУББОТА АВТОБУС УЕХАЛ ДОЖДЬ ЗОНТ "
         "ЗАБЫЛ ОПЯТЬ КОТ ОРЁТ ТАМ ВМЕСТО УРОКА ОТКРЫВАЕШЬ ХОЛОДИЛЬНИК ПУСТО ДЕНЬГИ КОНЧИЛИСЬ").split()


def draft_text(rng: random.Random, lines: int, repetitive: bool) -> str:
    pool = rng.sample(WORDS, 3) if repetitive else WORDS
    return "\n@\n".join(" ".join(rng.choice(pool) for _ in range(rng.randint(2, 4))) for _ in range(lines))


def likes(text: str, lines: int, grammar: float) -> bool:
    return 5 <= lines <= 9 and repeated_words(text) <= 0.4 and grammar >= 0.85


def simulate(db: sqlite_utils.Database, n: int, *, taste: str = "lines", seed: int = 0) -> int:
    """Store `n` drafts and the simulated moderator's decision on each; returns the approvals."""
    rng = random.Random(seed)
    approved = 0
    for i in range(n):
        lines = rng.randint(2, 12)
        text = draft_text(rng, lines, rng.random() < 0.5)
        m = Measures(known_share=rng.uniform(0.9, 1.0), reached_gap=True, shared_chars=rng.randint(0, 40),
                     line_count=lines, logprob_per_char=rng.gauss(-1.6, 0.25), grammar=rng.uniform(0.75, 1.0))
        draft_id = draft_rows.add_draft(db, text=text, model_version="simulated", seed=i, max_length=500,
                                        temperature=rng.choice((0.7, 0.8, 0.9)), status="pending",
                                        measures=m.columns())
        if taste == "lines":
            approve = rng.random() < (0.85 if likes(text, lines, m.grammar or 0.0) else 0.15)
        elif taste == "random":
            approve = rng.random() < 0.5
        else:
            raise ValueError(f"unknown taste {taste!r}")
        if approve and rng.random() < 0.2:
            final = text + "\n@\nЭХ"
            draft_rows.decide(db, draft_id, action="edit", to_status="queued", actor_id=1, final_text=final)
            draft_rows.set_edit_distance(db, draft_id, len(final) - len(text))
        elif approve:
            draft_rows.decide(db, draft_id, action="approve", to_status="queued", actor_id=1)
        else:
            draft_rows.decide(db, draft_id, action=rng.choice(("reject", "regenerate")), to_status="rejected",
                              actor_id=1)
        approved += approve
    return approved

