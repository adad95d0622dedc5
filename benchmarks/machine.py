"""
What the benchmark reads from /proc and sets on this machine: a server
process's memory, threads and waits for a CPU, the load average, and the
open-files limit.
"""

import resource
from pathlib import Path


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
