"""
Benchmark notifications under stock Daphne against two baselines, in one run.

    python -m benchmarks.run [--quick] [--servers daphne,fastapi,sse-starlette]
                             [--scenarios capacity,fanout,storm,burst,spread,reload]

Servers: ``daphne project.asgi:application`` (in-memory layer); the
hand-made FastAPI service (examples/fastapi_sse) and an sse-starlette service
(examples/sse_starlette_app), both on uvicorn from examples/setup.sh's venv.

Scenarios (each on a fresh server process):

- capacity: open N idle streams; RSS and OS threads per stream; then SIGTERM
  with all N open (drain).
- fanout: 1,000 then 5,000 streams on one event type, events published over
  HTTP at a fixed rate with a timestamp in the payload; delivery ratio,
  publish-to-parsed latency, server CPU; then SIGTERM with 5,000 open (drain).
- storm: events are published, then N clients connect at once with
  Last-Event-ID: time until all have headers and their replay.
- burst (daphne only): two Daphne processes on a redis-server of its own,
  N streams on two types, events published as fast as they can from 4
  processes (benchmarks/publisher.py); delivered, duplicates, order
  violations, stream_reset events, seconds to the last delivery.
- spread (daphne only): the capacity scenario's N streams over two Daphne
  processes on a redis-server of their own, then SIGTERM to both (drain):
  a process runs Python on one core at a time, so this is how a deployment
  drains on both cores.
- reload (daphne only): N following streams on ``manage.py runserver`` with
  the autoreloader, events published, a watched file changed, events
  published again as soon as the new child accepts them: seconds from the
  first farewell until the new child accepts events and answers streams and
  until every client has every event; delivered, duplicates, order
  violations, stream_reset events.

The client is benchmarks/client.py in several worker processes. Machines are
shared: read the ratios against the baselines, not absolute times. Prints a
table per scenario, the targets, then one JSON line per measurement.

This module is the command line; the rest, by module:

- scale.py: how big a quick and a full run are, and how counts are shared out;
- servers.py: the servers under test and how to start them;
- bench.py: the run's state and the steps its scenarios share (start
  servers fresh and warmed up, record rows);
- scenarios/: one module per scenario, and drain.py, their SIGTERM step;
- paced_publisher.py: publishing over HTTP from the run, once or at a rate;
- client_pool.py: the run's side of the client worker processes;
- client.py: a worker's command loop; held_streams.py: the streams it
  opens, follows and closes; sse_stream.py: how it reads one stream;
- machine.py: /proc figures and rlimits; figures.py: percentiles;
- report.py: the tables, the ratios and the targets.
"""

import argparse
import asyncio
import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from .bench import Bench
from .client_pool import ClientPool
from .machine import load_average, raise_open_files_limit
from .report import report
from .scale import FULL, QUICK, Scale
from .scenarios import SCENARIOS
from .servers import BASELINES, TARGETS, examples_python


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Read the options README.md ("Benchmarks") documents."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small numbers, about a minute")
    parser.add_argument("--servers", default="daphne,fastapi,sse-starlette")
    parser.add_argument("--scenarios", default="capacity,fanout,storm,burst,spread,reload")
    parser.add_argument("--workers", type=int, default=4, help="client worker processes")
    parser.add_argument("--examples-venv", help="venv of the baselines (default: examples/.venv)")
    parser.add_argument(
        "--daphne-settings",
        default="project.settings",
        help="settings module of the Daphne server, e.g. benchmarks.settings_no_middleware",
    )
    return parser.parse_args(argv)


async def run(arguments: argparse.Namespace, scale: Scale | None = None) -> list[dict]:
    """Run the chosen scenarios against the chosen servers; print and return the measurements."""
    scale = scale or (QUICK if arguments.quick else FULL)
    targets = [TARGETS[name] for name in arguments.servers.split(",")]
    scenarios = arguments.scenarios.split(",")
    limit = raise_open_files_limit()
    needed = max(scale.capacity_streams, *scale.fanout_streams) + 200
    if limit < needed:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {limit} is below the {needed} descriptors needed.")
    python = examples_python(arguments.examples_venv) if any(t.name in BASELINES for t in targets) else None
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {'quick' if arguments.quick else 'full'} run, "
        f"{arguments.workers} client workers, load average {load_average()}"
    )
    for target in targets:
        print(f"# {target.name}: {target.description}")
    print(f"# daphne settings: {arguments.daphne_settings}")
    pool = ClientPool(arguments.workers)
    try:
        with tempfile.TemporaryDirectory(prefix="notifications-bench-") as work:
            bench = Bench(scale, pool, python, Path(work), arguments.daphne_settings)
            for scenario in scenarios:
                for target in targets:
                    await SCENARIOS[scenario](bench, target)
    finally:
        pool.stop()
    print(f"\n# finished {datetime.now(UTC):%H:%M} UTC, load average {load_average()}")
    report(bench.results)
    print("\n## JSON")
    for row in bench.results:
        print(json.dumps(row))
    return bench.results


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.run``."""
    asyncio.run(run(parse_arguments(argv)))


if __name__ == "__main__":
    main()
