"""
What the benchmark reads from /proc and sets on this machine: a server
process's memory, threads and waits for a CPU, the load average, the
open-files limit, and how fast the machine runs Python at the moment.
"""

import resource
import subprocess
import sys
from pathlib import Path

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


def proc_status(pid: int) -> dict:
    """Return the VmRSS (KiB) and thread count of ``pid``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "Threads"):
            fields[name] = int(value.split()[0])
    return {"rss_kib": fields["VmRSS"], "threads": fields["Threads"]}


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
