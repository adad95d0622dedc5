"""
What the benchmark reads from /proc and sets on this machine: a server
process's memory, threads, waits for a CPU and whether it has gone quiet,
the load average, the open-files limit, and how fast the machine runs
Python at the moment.
"""

import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from notifications.stop_check import cpu_seconds

# A fixed amount of pure-Python work for one core. The shared machines this
# runs on change speed by up to 1.6x from one minute to the next (this loop
# took 1.30 to 2.09 CPU seconds at 8,000,000 turns within a minute, with no
# other process running): timed next to a drain, it says how fast the
# machine was then.
REFERENCE_LOOP = """
import time
started = time.process_time()
total = 0
for number in range(2_000_000):
    total += number * number
print(time.process_time() - started)
"""

# /proc counts CPU time in clock ticks; a quiet process may still be charged one.
ONE_TICK = 1 / os.sysconf("SC_CLK_TCK") + 1e-9


def proc_status(pid: int) -> dict:
    """Return the VmRSS (KiB) and thread count of ``pid``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "Threads"):
            fields[name] = int(value.split()[0])
    return {"rss_kib": fields["VmRSS"], "threads": fields["Threads"]}


async def until_quiet(pids: list[int], timeout: float, window: float = 0.25) -> bool:
    """
    Wait until the processes ``pids`` together used at most one clock tick
    of CPU in ``window`` seconds (they have done what the last step gave
    them: opening or closing streams, a warm-up); return False if they were
    still busy after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    before = sum(map(cpu_seconds, pids))
    while time.monotonic() < deadline:
        await asyncio.sleep(window)
        now = sum(map(cpu_seconds, pids))
        if now - before <= ONE_TICK:
            return True
        before = now
    return False


def runqueue_wait_seconds(pid: int) -> float:
    """Return how long the main thread of ``pid`` has waited for a CPU while runnable."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (processes started later inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def reference_loop_seconds() -> float:
    """Return the CPU seconds a fresh interpreter takes for REFERENCE_LOOP now."""
    finished = subprocess.run(
        [sys.executable, "-c", REFERENCE_LOOP], capture_output=True, text=True, check=True, timeout=60
    )
    return round(float(finished.stdout), 3)
