"""
One publisher process: publish events as fast as it can, and say which ids
it got back.

    python -m benchmarks.publisher --count 1250 --types alpha,beta [--start-at T]
        [--http PORT[,PORT...] --token TOKEN] [--concurrency 8]

Without ``--http`` it calls ``notifications.apublish()`` in this process
(DJANGO_SETTINGS_MODULE and, for Redis, REDIS_URL say where events go); with
``--http`` it POSTs to ``/sse/publish/<type>/`` of the given Daphne ports in
turn, each worker on one keep-alive connection. Event n goes to type
``n % len(types)``; its payload is ``{"n": n, ..., "t": <time.monotonic()>}``
("t" last: benchmarks/sse_stream.py reads the publish time up to "}").

Prints one JSON line, ``{"ids": {type: [id, ...]}, "seconds": ...}``, ids in
the order each publish returned. Exits with an error at the first publish
that is refused: every id printed was accepted. The burst benchmark and
tests/test_delivery_e2e.py run several of these at once.
"""

import argparse
import asyncio
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Bytes of filler in each payload, so frames have a realistic size.
FILLER = "x" * 64
# Seconds one HTTP publish may take at most.
HTTP_TIMEOUT = 30


def payload(n: int) -> dict:
    return {"n": n, "pid": os.getpid(), "text": FILLER, "t": time.monotonic()}


class HttpPublisher:
    """POST events over one keep-alive connection per worker thread."""

    def __init__(self, ports: list[int], token: str):
        self.ports = ports
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def run(self, jobs: list[tuple[int, str]], worker: int, ids: dict[str, list[str]]) -> None:
        port = self.ports[worker % len(self.ports)]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        try:
            for n, event_type in jobs:
                body = json.dumps(payload(n)).encode()
                connection.request("POST", f"/sse/publish/{event_type}/", body, self.headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 202:
                    raise SystemExit(
                        f"Publish to port {port} refused with {response.status}: {answer[:200]!r}"
                    )
                ids[event_type].append(json.loads(answer)["id"])
        finally:
            connection.close()


def publish_http(jobs: list[list[tuple[int, str]]], ports: list[int], token: str, ids: dict) -> None:
    publisher = HttpPublisher(ports, token)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            publisher.run(jobs[worker], worker, ids)
        except BaseException as exc:  # Reported by the main thread.
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def publish_api(jobs: list[list[tuple[int, str]]], ids: dict) -> None:
    # Django is set up by main().
    from notifications import apublish

    async def work(share: list[tuple[int, str]]) -> None:
        for n, event_type in share:
            ids[event_type].append(await apublish(event_type, payload(n)))

    async def main() -> None:
        await asyncio.gather(*(work(share) for share in jobs))

    asyncio.run(main())


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True, help="events to publish")
    parser.add_argument("--types", required=True, help="event types, comma-separated, used in turn")
    parser.add_argument("--first", type=int, default=0, help="number of the first event (for payloads)")
    parser.add_argument("--http", help="Daphne ports to POST to, comma-separated; default: apublish()")
    parser.add_argument("--token", help="bearer token of the publish endpoint (with --http)")
    parser.add_argument("--concurrency", type=int, default=8, help="publishes in flight at once")
    parser.add_argument("--start-at", type=float, default=0.0, help="time.monotonic() to start at")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    types = arguments.types.split(",")
    numbers = range(arguments.first, arguments.first + arguments.count)
    events = [(n, types[n % len(types)]) for n in numbers]
    jobs = [events[worker :: arguments.concurrency] for worker in range(arguments.concurrency)]
    ids: dict[str, list[str]] = {event_type: [] for event_type in types}
    if arguments.http and not arguments.token:
        raise SystemExit("--http needs --token.")
    if arguments.http is None:
        # Set Django up before the start time, so publishers start together.
        import django

        django.setup()
    time.sleep(max(arguments.start_at - time.monotonic(), 0))
    started = time.monotonic()
    if arguments.http:
        publish_http(jobs, [int(port) for port in arguments.http.split(",")], arguments.token, ids)
    else:
        publish_api(jobs, ids)
    print(json.dumps({"ids": ids, "seconds": round(time.monotonic() - started, 3)}))
    sys.stdout.flush()


def start(
    count: int,
    types: list[str],
    *,
    first: int = 0,
    ports: list[int] | None = None,
    token: str | None = None,
    start_at: float = 0.0,
    env: dict | None = None,
) -> subprocess.Popen:
    """Start one publisher process (see the module docstring); read it with result()."""
    argv = [sys.executable, "-m", "benchmarks.publisher", "--count", str(count), "--types", ",".join(types)]
    argv += ["--first", str(first), "--start-at", str(start_at)]
    if ports:
        argv += ["--http", ",".join(map(str, ports)), "--token", token or ""]
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen, timeout: float) -> dict:
    """Wait (at most ``timeout`` s) for a publisher started by start(); return what it printed."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"Publisher exited with {process.returncode}: {err.strip()[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
