"""
Reload (Daphne only, under ``manage.py runserver`` with the autoreloader):
N streams that follow (connect again with Last-Event-ID, as EventSource
does), events published, then a file the autoreloader watches changes. Once
every client has had its farewell, events are published again as soon as
the new child accepts them, while the clients reconnect. Measured: from the
first farewell until the new child accepts an event and answers a stream,
and until every client has every event; delivered, duplicates, order
violations, stream_reset events.
"""

import asyncio
import os
import time

from notifications.testing import ServerProcess, runserver

from ..bench import Bench
from ..figures import delivery, tally_totals
from ..paced_publisher import PacedPublisher
from ..servers import ROOT, Target, demo_env
from .drain import log_problems

# Seconds the old child may take to tell every client, and the new one to start.
RELOAD_WAIT = 30
# Seconds between two attempts to publish while the new child starts.
PUBLISH_RETRY = 0.05


async def reload(bench: Bench, target: Target) -> None:
    if target.name != "daphne":
        return  # The baselines have no autoreloader that keeps their streams' history.
    settings_file = bench.work / "reload_settings.py"
    settings_file.write_text(f"from {bench.daphne_settings} import *  # noqa: F403\n")
    env = demo_env(bench.work, "reload_settings", {"PYTHONPATH": f"{bench.work}{os.pathsep}{ROOT}"})

    def command(port: int) -> ServerProcess:
        return runserver(port, env=env, cwd=ROOT)

    async with bench.serving(target, command=command) as server:
        streams, events = bench.scale.reload_streams, bench.scale.reload_events
        opened = await bench.pool.open(server.port, streams, concurrency=200, follow=True)
        for seq in range(events):
            await bench.publisher.publish(server.port, {"seq": seq})
        await bench.pool.call_all("collect_tallies", 60, expected=events, timeout=30)
        # The autoreloader (StatReloader) compares modification times once a second.
        modified = settings_file.stat().st_mtime + 1
        touched_at = time.monotonic()
        os.utime(settings_file, (modified, modified))
        told = await bench.pool.call_all("wait_farewells", RELOAD_WAIT + 30, timeout=RELOAD_WAIT)
        back_at = await publish_once_back(bench.publisher, server.port, {"seq": events})
        published = events
        if back_at is not None:
            published += 1
            for seq in range(events + 1, 2 * events):
                await bench.publisher.publish(server.port, {"seq": seq})
                published += 1
        answers = await bench.pool.call_all(
            "collect_tallies",
            bench.scale.collect_timeout + 30,
            expected=published,
            timeout=bench.scale.collect_timeout,
        )
        times = await bench.pool.call_all("reload_times", 30)
        totals = tally_totals(answers)
        farewell_at = min((t["first_farewell_at"] for t in times if t["first_farewell_at"]), default=None)
        first_answer = min((t["first_answer_at"] for t in times if t["first_answer_at"]), default=None)
        caught_up = totals["last_at"] if totals["complete"] == totals["clients"] else None

        def after_farewell(moment: float | None) -> float | None:
            return round(moment - farewell_at, 2) if moment and farewell_at else None

        bench.record(
            "reload",
            target,
            streams=opened["opened"],
            events=published,
            told=sum(t["told"] for t in told),
            farewell_after_change_seconds=round(farewell_at - touched_at, 2) if farewell_at else None,
            publish_back_seconds=after_farewell(back_at),
            stream_back_seconds=after_farewell(first_answer),
            caught_up_seconds=after_farewell(caught_up),
            **delivery(totals, published),
            **log_problems(server.output()),
        )


async def publish_once_back(publisher: PacedPublisher, port: int, data: dict) -> float | None:
    """
    Publish ``data`` as soon as the server at ``port`` accepts it (a
    stopping child refuses with 503, a starting one is not listening yet);
    return when it was accepted, None if not within RELOAD_WAIT seconds.
    """
    deadline = time.monotonic() + RELOAD_WAIT
    for _ in range(int(RELOAD_WAIT / PUBLISH_RETRY)):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            await publisher.publish(port, data, timeout=min(left, 5))
        except (OSError, RuntimeError):
            await asyncio.sleep(PUBLISH_RETRY)
            continue
        return time.monotonic()
    return None
