"""
State of this serving process: the event loop that serves streams and
whether the process is stopping.

Publishing reads it (to hand sync calls to the serving loop, and to refuse
events once a drain has begun, or that no server would ever see), the hub
and the lifecycle write it.
"""

import asyncio
import gc
import os
import sys

from .conf import setting

serving_loop: asyncio.AbstractEventLoop | None = None
stopping = False

# manage.py commands whose process may serve the streams it publishes to:
# the servers, and the test runner (tests open streams in-process).
SERVING_COMMANDS = frozenset({"runserver", "testserver", "test"})


def management_command() -> str | None:
    """Return the manage.py (or django-admin) command this process runs, or None."""
    program = sys.argv[0] if sys.argv else ""
    name = os.path.basename(program)
    if name in ("manage.py", "django-admin") or program.endswith(os.path.join("django", "__main__.py")):
        return sys.argv[1] if len(sys.argv) > 1 else None
    return None


def never_serves() -> bool:
    """
    Return whether this process cannot serve streams: a manage.py command
    other than a server or the test runner (shell, db_worker, publish...)
    that has not served any. Servers started otherwise (daphne, uvicorn)
    and pytest may.
    """
    command = management_command()
    return serving_loop is None and command is not None and command not in SERVING_COMMANDS


def tune_garbage_collection() -> None:
    """Apply NOTIFICATIONS['GC_THRESHOLDS'] to this process, which serves streams."""
    thresholds = setting("GC_THRESHOLDS")
    if thresholds is not None:
        gc.set_threshold(*thresholds)
