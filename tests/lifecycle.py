"""Helpers shared by the lifecycle tests: publishing to and reading a server subprocess."""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from notifications.testing import http_request

TOKEN = "test-token-0123456789abcdef0123456789"
ROOT = Path(__file__).resolve().parent.parent


def manage(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``manage.py *args`` of this project in ``env``; bounded to two minutes."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=ROOT,
        check=check,
        capture_output=True,
        text=True,
        timeout=120,
    )


def publish_http(port: int, event_type: str, data) -> tuple[int, dict | str]:
    """POST one event to a server subprocess; return (status, parsed body)."""
    status, body = http_request(
        port,
        "POST",
        f"/sse/publish/{event_type}/",
        json.dumps(data).encode(),
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


async def publish_ids(port: int, event_type: str, count: int, start: int = 0) -> list[str]:
    """Publish ``count`` events and return their ids."""
    ids = []
    for n in range(start, start + count):
        status, body = await asyncio.to_thread(publish_http, port, event_type, {"n": n})
        assert status == 202, body
        ids.append(body["id"])
    return ids


def probe_lines(env: dict) -> list[dict]:
    path = Path(env["PROBE_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def problem_lines(output: str) -> list[str]:
    """Return log lines that must never appear in a clean stop."""
    return [line for line in output.splitlines() if "Traceback" in line or "ERROR" in line]


def wait_for_file_change_detected(seconds: float = 1.1) -> None:
    # StatReloader compares mtimes once a second; make the new mtime differ.
    time.sleep(seconds)


def touch(path: Path) -> None:
    now = time.time()
    os.utime(path, (now, now))
