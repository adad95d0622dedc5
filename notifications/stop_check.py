"""
Measure what a server does to open streams when it is told to stop.

Start a server on a free loopback port, open N streams, publish events,
send a signal, and report what the clients saw: streams properly ended,
farewell events, events lost, time to exit, tracebacks and ERROR lines in
the server's output. Any server that serves ``/sse/subscribe/<type>/`` and
accepts ``POST /sse/publish/<type>/`` with a bearer token can be checked, so
the same report compares this app with other implementations. What a server
needs (its settings, the token it accepts) is passed in, never assumed.
"""

import asyncio
import json
import os
import resource
import shlex
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .testing import ServerProcess, free_port, http_request, open_streams


@dataclass
class StopReport:
    server: str
    streams: int
    events_published: int
    ended_cleanly: int
    farewells: int
    events_lost: int
    events_duplicated: int
    exit_seconds: float | None
    # The server's CPU seconds from the signal to its exit: unlike the exit
    # time, it does not grow when other work shares the cores. Linux only.
    exit_cpu_seconds: float | None
    exit_status: int | None
    traceback_lines: int
    error_lines: int

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds used by the running process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """Return user + system CPU seconds of this process's children that have exited."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _publish(port: int, event_type: str, token: str, n: int) -> str:
    status, body = http_request(
        port,
        "POST",
        f"/sse/publish/{event_type}/",
        json.dumps({"n": n}).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    if status != 202:
        raise RuntimeError(f"Publishing answered {status}: {body[:200]!r}.")
    return json.loads(body)["id"]


def _wait_for_exit(server: ServerProcess, timeout: float) -> tuple[int | None, float]:
    """Return the server's exit status (None if it did not exit within ``timeout``) and when it exited."""
    status = server.wait(timeout)
    return status, time.monotonic()


async def _check(server: ServerProcess, name, streams, events, event_type, token, signum, timeout):
    clients = await open_streams(server.port, f"/sse/subscribe/{event_type}/", streams)
    for n in range(events):
        await asyncio.to_thread(_publish, server.port, event_type, token, n)
    # Let the last event reach every stream, bounded.
    expected = {str(n) for n in range(events)}
    await asyncio.gather(
        *(client.read_until(lambda c: len(c.of_type(event_type)) >= events, 10) for client in clients)
    )
    try:
        cpu_before = cpu_seconds(server.process.pid) + children_cpu_seconds()
    except OSError:
        cpu_before = None
    sent_at = server.signal(signum)
    # Timed apart from the clients: reading thousands of streams to their
    # end can take them longer than the server takes to exit.
    exiting = asyncio.ensure_future(asyncio.to_thread(_wait_for_exit, server, timeout))
    await asyncio.gather(*(client.read_to_end(timeout) for client in clients))
    status, exited_at = await exiting
    exit_seconds = exited_at - sent_at if status is not None else None
    exit_cpu_seconds = None
    if status is not None and cpu_before is not None:
        exit_cpu_seconds = round(children_cpu_seconds() - cpu_before, 2)
    lost = duplicated = 0
    for client in clients:
        received = [str(event.json().get("n")) for event in client.of_type(event_type)]
        lost += len(expected - set(received))
        duplicated += len(received) - len(set(received))
        client.close()
    output = server.output()
    return StopReport(
        server=name,
        streams=streams,
        events_published=events,
        ended_cleanly=sum(client.terminated for client in clients),
        farewells=sum(bool(client.of_type("server_shutdown")) for client in clients),
        events_lost=lost,
        events_duplicated=duplicated,
        exit_seconds=exit_seconds,
        exit_cpu_seconds=exit_cpu_seconds,
        exit_status=status,
        traceback_lines=output.count("Traceback"),
        error_lines=sum("ERROR" in line for line in output.splitlines()),
    )


def run_stop_check(
    name: str,
    command: str,
    *,
    publish_token: str,
    streams: int = 500,
    events: int = 5,
    event_type: str = "announcement",
    signum: int = signal.SIGTERM,
    timeout: float = 30,
    env: dict | None = None,
    cwd: Path | None = None,
) -> StopReport:
    """
    Run ``command`` (``{port}`` is replaced by a free port) with ``env`` added
    to its environment, and report what a stop does to ``streams`` open
    streams; events are published with the bearer ``publish_token``, which
    the server must accept. A server still running after ``timeout`` seconds
    is killed and reported with no exit status.
    """
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in shlex.split(command)]
    server = ServerProcess(argv, port, env, cwd)
    with tempfile.TemporaryDirectory() as directory:
        server.start(Path(directory) / "server.log")
        try:
            return asyncio.run(
                _check(server, name, streams, events, event_type, publish_token, signum, timeout)
            )
        finally:
            server.stop(timeout=2)
