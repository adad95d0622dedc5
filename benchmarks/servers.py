"""
The servers under test ("targets"): how to start each one, and the token,
event type and paths the benchmark uses on them.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from notifications.testing import ServerProcess, daphne

# The demo project's ASGI application, as daphne takes it.
DEMO_ASGI = "project.asgi:application"

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TOKEN = "bench-token-0123456789abcdef0123456789"
EVENT_TYPE = "announcement"
PATH = f"/sse/subscribe/{EVENT_TYPE}/"
BASELINES = ("fastapi", "sse-starlette")


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    replay: bool

    def server(
        self,
        port: int,
        examples_python: str | None,
        work: Path,
        daphne_settings: str,
        env: dict | None = None,
    ) -> ServerProcess:
        if self.name == "daphne":
            return daphne(port, DEMO_ASGI, env=demo_env(work, daphne_settings, env), cwd=ROOT)
        module = {"fastapi": "fastapi_sse.app:app", "sse-starlette": "sse_starlette_app.app:app"}[self.name]
        argv = [examples_python, "-m", "uvicorn", "--app-dir", str(EXAMPLES), module]
        argv += ["--host", "127.0.0.1", "--port", str(port)]
        # The hand-made service never stops without it (see examples/README.md).
        argv += ["--timeout-graceful-shutdown", "5"]
        return ServerProcess(argv, port, env={"NOTIFICATIONS_PUBLISH_TOKEN": TOKEN}, cwd=ROOT)


def demo_env(work: Path, settings: str, env: dict | None = None) -> dict:
    """The environment of the demo project under test, with ``env`` on top."""
    return {
        "DJANGO_SETTINGS_MODULE": settings,
        "DJANGO_DEBUG": "0",
        "DJANGO_DB_PATH": str(work / "db.sqlite3"),
        "NOTIFICATIONS_PUBLISH_TOKEN": TOKEN,
        # The embedded default without the database: layer and history in memory.
        "NOTIFICATIONS_HISTORY_BACKEND": "notifications.history.memory.InMemoryHistory",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }


TARGETS = {
    "daphne": Target("daphne", "notifications on stock Daphne 4.2.3, in-memory layer", replay=True),
    "fastapi": Target("fastapi", "hand-made FastAPI + uvicorn (examples/fastapi_sse)", replay=False),
    "sse-starlette": Target(
        "sse-starlette", "sse-starlette defaults + uvicorn (examples/sse_starlette_app)", replay=True
    ),
}


def examples_python(venv: str | None) -> str:
    """Build (if needed) the baselines' venv with examples/setup.sh; return its python."""
    command = [str(EXAMPLES / "setup.sh")] + ([venv] if venv else [])
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout.strip()
