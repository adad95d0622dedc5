"""The benchmark script runs end to end and its client reads what the server sends."""

import os
import subprocess
import sys

from benchmarks.machine import until_quiet
from benchmarks.run import parse_arguments, run
from benchmarks.scale import Scale

TINY = Scale(
    capacity_streams=40,
    fanout_streams=(10, 30),
    fanout_events=10,
    fanout_rate=50,
    storm_clients=20,
    storm_missed=5,
    collect_timeout=10,
    quiet_timeout=5,
    burst_streams=20,
    burst_events=200,
    burst_timeout=20,
    reload_streams=20,
    reload_events=5,
)


async def test_benchmark_measures_every_scenario_against_daphne(capsys):
    results = await run(parse_arguments(["--servers", "daphne", "--workers", "2"]), TINY)

    by_scenario = {}
    for row in results:
        by_scenario.setdefault(row["scenario"], []).append(row)
    (capacity,) = by_scenario["capacity"]
    assert capacity["streams"] == 40 and capacity["failures"] == {}
    assert capacity["threads_per_stream"] < 0.1
    assert [(r["streams"], r["delivered"]) for r in by_scenario["fanout"]] == [(10, 100), (30, 300)]
    assert [(r["after"], r["streams"], r["clean"], r["returncode"]) for r in by_scenario["drain"]] == [
        ("capacity", 40, 40, 0),
        ("fanout", 30, 30, 0),
        ("spread over 2 processes", 40, 40, 0),
    ]
    for drain in by_scenario["drain"]:  # The machine's speed, timed next to each drain.
        loop = drain["reference_loop_seconds"]
        assert loop > 0
        assert drain["exit_per_reference_loop"] == round(drain["exit_seconds"] / loop, 2)
    (storm,) = by_scenario["storm"]
    assert (storm["connected"], storm["replayed"], storm["failures"]) == (20, 20, {})
    (burst,) = by_scenario["burst"]
    assert (burst["streams"], burst["events"], burst["delivered"]) == (20, 200, 4000)
    assert (burst["duplicates"], burst["order_violations"], burst["resets"]) == (0, 0, 0)
    (reloaded,) = by_scenario["reload"]
    assert (reloaded["streams"], reloaded["told"], reloaded["events"]) == (20, 20, 10)
    assert reloaded["delivery_ratio"] == 1
    assert (reloaded["duplicates"], reloaded["order_violations"], reloaded["resets"]) == (0, 0, 0)
    assert (reloaded["tracebacks"], reloaded["error_lines"]) == (0, 0)
    # Measured in order: the old child told every client, then the new one answered.
    assert 0 < reloaded["farewell_after_change_seconds"]
    assert 0 < reloaded["stream_back_seconds"] <= reloaded["caught_up_seconds"]
    assert 0 < reloaded["publish_back_seconds"] <= reloaded["caught_up_seconds"]
    printed = capsys.readouterr().out
    for title in ("## capacity", "## fanout", "## drain", "## storm", "## burst", "## reload", "## targets"):
        assert title in printed
    assert "## JSON" in printed


def test_history_benchmark_measures_both_backends():
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.history", "--events", "400", "--size", "100"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"},
    ).stdout.splitlines()

    assert [line.split()[0] for line in output] == ["µs", "InMemoryHistory", "DatabaseHistory", "ratio"]
    assert all(float(value) > 0 for line in output[1:] for value in line.split()[1:])


async def test_waiting_for_quiet_tells_a_busy_process_from_an_idle_one():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    try:
        assert not await until_quiet([busy.pid], timeout=1)
        assert await until_quiet([idle.pid], timeout=5)
        assert not await until_quiet([idle.pid, busy.pid], timeout=1)
    finally:
        for process in (busy, idle):
            process.kill()
            process.wait()
