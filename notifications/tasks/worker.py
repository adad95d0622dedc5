"""
Run a django-tasks-db worker inside the server process, for development.

With ``NOTIFICATIONS["EMBEDDED_TASK_WORKER"]`` naming a TASKS alias, each
server process runs that backend's queued tasks in a daemon thread, so
``manage.py runserver`` alone runs the whole demo: a view enqueues and
returns at once, the thread runs the task, and the task's events reach
browsers through this process's in-memory channel layer.

- Start: notifications.asgi.get_asgi_application() calls start(). Only
  processes that serve requests build the ASGI application (daphne, and the
  child of runserver's autoreloader), never migrate, shell or the
  autoreloader's parent.
- Stop: a server stop (lifecycle.py) calls stop() before it drains streams.
  The worker claims no new task, and the running one gets half of
  ``NOTIFICATIONS["DRAIN_TIMEOUT"]`` to finish, so its completion reaches
  browsers before the farewell. A task still running then is abandoned with
  the process, and django-tasks-db leaves it RUNNING; production runs
  ``manage.py db_worker`` processes instead, which finish their task on
  SIGTERM.

The thread runs django-tasks-db's own Worker (the loop behind ``db_worker``)
without its signal handlers, which belong to the server here.
"""

import logging
import threading

from django.db import connections
from django.utils.crypto import get_random_string

from ..conf import setting

logger = logging.getLogger(__name__)

# Seconds between two looks at an empty queue: how long a new task may wait,
# and the longest a stop waits for an idle worker (it sleeps uninterruptibly
# in django-tasks-db's loop). One poll is a short SQLite transaction.
POLL_INTERVAL = 0.2
# Seconds before trying again when the queue cannot be read (say, before
# `migrate` created its table).
RETRY_INTERVAL = 5


class EmbeddedWorker:
    """A django-tasks-db Worker for one TASKS alias, in a daemon thread of this process."""

    def __init__(self, backend_alias: str):
        from django_tasks_db.management.commands.db_worker import Worker

        self.worker = Worker(
            queue_names=["*"],
            excluded_queue_names=[],
            interval=POLL_INTERVAL,
            batch=False,
            backend_name=backend_alias,
            startup_delay=False,
            max_tasks=None,
            worker_id=f"embedded-{get_random_string(16)}",
        )
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="notifications-task-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()
        logger.info("Embedded task worker started backend=%s", self.worker.backend_name)

    def stop(self, timeout: float) -> bool:
        """Claim no new task, wait up to ``timeout`` seconds for the thread; return whether it ended."""
        self.stopping.set()
        self.worker.running = False
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
        failed_before = False
        try:
            while not self.stopping.is_set():
                try:
                    # Returns once worker.running is False; a task's own
                    # failure is recorded by the worker, never raised here.
                    self.worker.run()
                except Exception as exc:
                    if not failed_before:
                        logger.warning(
                            "Embedded task worker cannot read the task queue error=%r; retrying every %ss",
                            exc,
                            RETRY_INTERVAL,
                        )
                    failed_before = True
                    self.stopping.wait(RETRY_INTERVAL)
        finally:
            connections.close_all()


_worker: EmbeddedWorker | None = None


def start() -> EmbeddedWorker | None:
    """Start this process's embedded worker if the settings ask for one; return it."""
    global _worker
    alias = setting("EMBEDDED_TASK_WORKER")
    if alias is None or _worker is not None:
        return _worker
    _worker = EmbeddedWorker(alias)
    _worker.start()
    return _worker


def stop(timeout: float) -> None:
    """Stop this process's embedded worker, giving a running task ``timeout`` seconds."""
    global _worker
    worker, _worker = _worker, None
    if worker is None:
        return
    if worker.stop(timeout):
        logger.info("Embedded task worker stopped")
    else:
        logger.warning(
            "Embedded task worker still runs a task after %ss; the task is abandoned and stays RUNNING",
            timeout,
        )
