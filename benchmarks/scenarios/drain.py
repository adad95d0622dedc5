"""
The drain, the last step of the capacity, fanout and spread scenarios:
SIGTERM with streams open, time until the servers exited, how streams ended.
"""

import asyncio
import signal
import time

from notifications.stop_check import children_cpu_seconds, cpu_seconds
from notifications.testing import ServerProcess

from ..bench import Bench
from ..machine import reference_loop_seconds
from ..servers import Target

# Seconds a server may take to exit after SIGTERM.
DRAIN_WAIT = 30


def log_problems(output: str) -> dict:
    """Count tracebacks and ERROR lines; keep what our server says about its drain."""
    markers = ("Draining streams", "Drained streams", "Stopping requests", "Cannot drain", "The drain failed")
    said = [line for line in output.splitlines() if any(marker in line for marker in markers)]
    return {
        "tracebacks": output.count("Traceback"),
        "error_lines": sum("ERROR" in line for line in output.splitlines()),
        "server_said": said,
    }


async def drain(bench: Bench, target: Target, servers: list[ServerProcess], streams: int, after: str) -> dict:
    """
    SIGTERM the servers with ``streams`` open in all; time until the last
    exited, see how streams ended. The machine's speed is taken just before
    and just after (machine.REFERENCE_LOOP).
    """
    loop_before = await asyncio.to_thread(reference_loop_seconds)
    # The servers' CPU from the signal to their exit: unlike the exit
    # time, it does not grow when other work shares the cores.
    cpu_before = sum(cpu_seconds(server.process.pid) for server in servers) + children_cpu_seconds()
    sent_at = min(server.signal(signal.SIGTERM) for server in servers)
    ends = asyncio.ensure_future(bench.pool.watch_end(DRAIN_WAIT))
    waits = (asyncio.to_thread(server.wait, DRAIN_WAIT) for server in servers)
    returncodes = await asyncio.gather(*waits)
    exited = None not in returncodes
    exit_after = time.monotonic() - sent_at if exited else None
    exit_cpu = children_cpu_seconds() - cpu_before
    ended = await ends
    reference_loop = round((loop_before + await asyncio.to_thread(reference_loop_seconds)) / 2, 3)
    problems = log_problems("".join(server.output() for server in servers))
    return bench.record(
        "drain",
        target,
        after=after,
        streams=streams,
        exit_seconds=exit_after,
        exit_cpu_seconds=round(exit_cpu, 2) if exited else None,
        returncode=max(returncodes, key=abs) if exited else None,
        clean=ended["clean"],
        terminated=ended["terminated"],
        farewell=ended["farewell"],
        cut=ended["cut"],
        still_open=ended["still_open"],
        last_stream_end_seconds=ended["last_end"] - sent_at if ended["last_end"] else None,
        reference_loop_seconds=reference_loop,
        exit_per_reference_loop=round(exit_after / reference_loop, 2) if exited else None,
        **problems,
    )
