"""CPU that a Telegram start-up spends on HTTP clients: python-telegram-bot's default request
(HTTPXRequest(), which has httpx load the CA bundle into a new TLS context for each client) against
the product's (bot/telegram/requests.py: one shared context), measured in the same run.

A `buhurt run` makes four such clients at start (the check before the model loads, the
Application's two, the channel posts' Bot): the last column is that start-up's share.

    python benchmarks/telegram_requests.py [--n 50]

Prints figures, asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

START_UP_CLIENTS = 4


async def cpu_per_request(make, n: int) -> float:
    """CPU seconds to build, initialize and shut down one request object (mean of n)."""
    start = time.process_time()
    for _ in range(n):
        request = make()
        await request.initialize()
        await request.shutdown()
    return (time.process_time() - start) / n


async def main(n: int) -> None:
    from telegram.request import HTTPXRequest

    from bot.telegram.requests import telegram_request

    print(f"load: {open('/proc/loadavg').read().strip()}")
    telegram_request()   # the shared context is made once per process: count it with the first client
    baseline = await cpu_per_request(HTTPXRequest, n)
    product = await cpu_per_request(telegram_request, n)
    for name, seconds in (("PTB default (baseline)", baseline), ("shared TLS context", product)):
        print(f"{name:<24} {seconds * 1000:7.1f} ms CPU per client   start-up ({START_UP_CLIENTS} clients) "
              f"{seconds * START_UP_CLIENTS * 1000:6.0f} ms")
    print(f"shared / baseline: {product / baseline:.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50)
    asyncio.run(main(ap.parse_args().n))
