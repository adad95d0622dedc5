"""
What one history operation costs, per backend, in one run.

    python -m benchmarks.history [--events 2000] [--size 1000] [--database PATH]

Appends ``--events`` events spread over three topics (so each topic passes
HISTORY_SIZE and trims), then reads the way a hub and a reconnecting client
do: a short page near the head, and a long page of one topic. Prints µs per
operation for InMemoryHistory and DatabaseHistory (SQLite in a temporary
file, migrated first), and the ratio. The machine is shared: read the ratio.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

TOPICS = ["announcement", "user.1", "user.2"]


async def measure(history, events: int) -> dict[str, float]:
    """Return µs per append, per short read (10 newest) and per long read (up to 100)."""
    started = time.perf_counter()
    for n in range(events):
        await history.append(TOPICS[n % len(TOPICS)], "announcement", f'{{"n":{n}}}')
    append = (time.perf_counter() - started) / events
    head = await history.head()
    reads = max(events // 10, 1)
    started = time.perf_counter()
    for _ in range(reads):
        page = await history.read(TOPICS, type(head)(head.epoch, head.seq - 10), 100)
        assert page is not None and len(page.records) == 10
    short = (time.perf_counter() - started) / reads
    started = time.perf_counter()
    for _ in range(reads):
        page = await history.read(TOPICS[:1], type(head)(head.epoch, head.seq - 300), 100)
        assert page is not None and len(page.records) == 100
    long = (time.perf_counter() - started) / reads
    await history.close()
    return {"append": append * 1e6, "read 10": short * 1e6, "read 100": long * 1e6}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1000, help="HISTORY_SIZE")
    parser.add_argument("--database", help="SQLite file (default: a new temporary one)")
    arguments = parser.parse_args(argv)
    if arguments.events < 400:
        parser.error("--events must be at least 400 (the long read reads 300 back).")
    directory = tempfile.TemporaryDirectory()
    os.environ["DJANGO_DB_PATH"] = arguments.database or str(Path(directory.name) / "history.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "notifications", verbosity=0)
    from notifications.history.database import DatabaseHistory
    from notifications.history.memory import InMemoryHistory

    results = {}
    for backend in (InMemoryHistory, DatabaseHistory):
        results[backend.__name__] = asyncio.run(measure(backend(arguments.size), arguments.events))
    print(f"{'µs per operation':<18}" + "".join(f"{name:>12}" for name in results["InMemoryHistory"]))
    for name, row in results.items():
        print(f"{name:<18}" + "".join(f"{value:>12.1f}" for value in row.values()))
    memory, database = results["InMemoryHistory"], results["DatabaseHistory"]
    print(f"{'ratio':<18}" + "".join(f"{database[key] / memory[key]:>12.0f}" for key in memory))
    directory.cleanup()
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
