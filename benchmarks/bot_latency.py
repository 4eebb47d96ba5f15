"""Bot latency: 50 simulated users send /generate to the real bot (python-telegram-bot, the real
handlers, SQLite, the bundled model) through the fake Bot API server; prints p50/p99 of the time
from an update being queued at the server to the bot's reply reaching it.

The fake server and the simulated users run in a child process, so they do not share the bot's
GIL (the real Bot API is another machine). Scenarios:
  baseline      50 users send /start within 2.5 s: a reply and nothing else (HTTP, polling, dispatch)
  warm, steady  the pool holds a post for everyone; the 50 users send within 2.5 s (~20/s)
  warm, burst   the same, all 50 at one instant: Telegram allows ~30 messages/s to different
                users, so AIORateLimiter spreads the replies over ~0.7 s (by design)
  empty         no ready posts (background refill off): /generate is generated on demand while
                a slot is free (telegram.max_concurrent_generations), else a "busy" reply
  quiet         the baseline again, measured just before the flood (the load drifts)
  flood         one user sends 300 /start within 2.5 s while the 50 users each send one /start:
                the 50's latencies, against `quiet` (the same 50 /start alone); the per-user
                flood gate (telegram.user_burst / user_window_seconds) drops the flooder's commands
                past the burst before any handler, so the target is the 50's p99 within 2x the quiet
                p99. `flood, no gate` is the same with the gate off (the code before issue 14).

Run from the repository root: python benchmarks/bot_latency.py [--users 50]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_server import FakeBotApi  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def users_process(conn, seed: int) -> None:
    """Child: the fake Bot API server plus the simulated users; answers ("run", users, spread)
    with (latencies in ms, replies that carried a post)."""
    random.seed(seed)
    with FakeBotApi() as server:
        conn.send((server.base_url, server.token))
        while (job := conn.recv()) != "stop":
            command, users, spread, *rest = job
            flooder, flood_count, flood_replies = rest[0] if rest else (None, 0, 0)
            before = len(server.calls_of("sendMessage"))
            # each user sends at a uniformly random moment within `spread` seconds: the arrival
            # times are drawn first and sorted, so they are spread out, not bunched
            order = sorted(users, key=lambda _: random.random()) + [flooder] * flood_count
            random.shuffle(order)
            moments = sorted(random.uniform(0, spread) for _ in order) if spread else [0.0] * len(order)
            pushed, start = {}, time.perf_counter()
            for user, moment in zip(order, moments):
                time.sleep(max(0.0, start + moment - time.perf_counter()))
                update_id = server.send_text(command, user_id=user)
                if user != flooder:
                    pushed[user] = update_id
            wanted = {str(u) for u in users}

            def answered(before=before, wanted=wanted, flooder=flooder, flood_replies=flood_replies) -> bool:
                sent = server.calls_of("sendMessage")[before:]
                chats = [str(c.params["chat_id"]) for c in sent]
                return wanted <= set(chats) and chats.count(str(flooder)) >= flood_replies

            server.wait_for(answered, timeout=300)
            replies: dict = {}
            for c in server.calls_of("sendMessage")[before:]:
                replies.setdefault(str(c.params["chat_id"]), c)  # each user's first reply
            latencies = [(replies[str(u)].at - server.pushed_at(pushed[u])) * 1000 for u in users]
            fetched = [(server.delivered_at[pushed[u]] - server.pushed_at(pushed[u])) * 1000 for u in users]
            posts = sum(replies[str(u)].params["text"].startswith("Мем #") for u in users)
            conn.send((latencies, posts, fetched))


def line(name: str, latencies: list[float], posts: int, fetched: list[float]) -> str:
    return (f"{name:<14} n={len(latencies):<3} p50={statistics.median(latencies):7.1f} ms"
            f"  p99={percentile(latencies, 99):7.1f} ms  max={max(latencies):7.1f} ms  posts={posts}"
            f"  (fetched by getUpdates: p50={statistics.median(fetched):.1f} p99={percentile(fetched, 99):.1f} ms)")


async def bot_side(conn, fake, users: int) -> list[str]:
    from tests.fakes.telegram_app import bot_running, make_settings

    out = []
    bundled = ROOT / "model" / "data" / "default.pt"
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp), fake, checkpoint=bundled if bundled.is_file() else None,
                                 pool={"channel_size": 0, "subscriber_size": users + 5, "batch_size": 32},
                                 sample={"max_length": 500}, telegram={"cooldown_seconds": 0.0})
        async with bot_running(settings) as app:
            service, limits = app.bot_data.service, app.bot_data.limits
            out.append(f"model {app.bot_data.holder.version} ({'bundled' if bundled.is_file() else 'tiny'}),"
                       f" max_concurrent_generations={settings.telegram.max_concurrent_generations}")

            async def measure(name: str, first_user: int, spread: float, command: str = "/generate",
                              flood: tuple = ()) -> list:
                conn.send((command, list(range(first_user, first_user + users)), spread, *([flood] if flood else [])))
                while not conn.poll():
                    await asyncio.sleep(0.02)
                result = conn.recv()
                out.append(line(name, *result))
                print(out[-1], flush=True)
                return result[0]

            # the baseline: /start does no work but a reply, so it measures the HTTP round trips,
            # getUpdates and python-telegram-bot's dispatch on this machine in this run
            base = await measure("baseline", 800_000, 2.5, "/start")

            for index, (name, spread) in enumerate((("warm, steady", 2.5), ("warm, burst", 0.0))):
                await service.fill_pools()
                while limits.refill_task is not None and not limits.refill_task.done():
                    await limits.refill_task
                got = await measure(name, 100_000 * (index + 1), spread)
                if index == 0:
                    out.append(f"warm, steady p99 / baseline /start p99 = "
                               f"{percentile(got, 99) / percentile(base, 99):.2f}x; target p99 < 200 ms: "
                               f"{'met' if percentile(got, 99) < 200 else 'MISSED'}")
                    print(out[-1], flush=True)
                while limits.refill_task is not None and not limits.refill_task.done():
                    await limits.refill_task
            # the flood case: one user's 300 /start among the 50 users' one each
            flooder = 700_000
            quiet = await measure("quiet", 650_000, 2.5, "/start")  # the baseline again, just before
            flood = await measure("flood", 600_000, 2.5, "/start",
                                  (flooder, 300, limits.burst + 1))  # the burst's replies and one notice
            ratio = percentile(flood, 99) / percentile(quiet, 99)
            p50_ratio = statistics.median(flood) / statistics.median(quiet)
            out.append(f"flood p99 / quiet p99 = {ratio:.2f}x (p50 {p50_ratio:.2f}x);"
                       f" target <= 2x: "
                       f"{'met' if ratio <= 2 else 'MISSED'}")
            print(out[-1], flush=True)
            window = limits.window_seconds
            limits.window_seconds = 0  # the gate off: every command of the flooder is answered
            await measure("flood, no gate", 500_000, 2.5, "/start", (flooder + 1, 300, 300))
            limits.window_seconds = window
            app.bot_data.db.execute("UPDATE drafts SET status = 'served' WHERE status = 'ready'")
            limits.refill_task = asyncio.get_running_loop().create_future()  # keeps the pool empty
            await measure("empty", 900_000, 2.5)
            limits.refill_task.set_result(None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import telegram

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"bot_latency: {args.users} users, Python {platform.python_version()}, python-telegram-bot "
          f"{telegram.__version__}, {cores} CPU cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    started = time.perf_counter()
    parent, child = mp.Pipe()
    process = mp.get_context("spawn").Process(target=users_process, args=(child, args.seed), daemon=True)
    process.start()
    base_url, token = parent.recv()
    try:
        lines = asyncio.run(bot_side(parent, SimpleNamespace(base_url=base_url, token=token), args.users))
    finally:
        parent.send("stop")
        process.join(10)
    print(lines[0])
    print(f"done in {time.perf_counter() - started:.1f} s, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
