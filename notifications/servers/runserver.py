"""
runserver adapter: drain streams when Django's autoreloader reloads or
stops the server, and hand the in-memory history to the next server.

With the autoreloader, ``runserver`` runs in two processes. The parent runs
django.utils.autoreload.restart_with_reloader(), which starts a child and
starts it again whenever it exits with status 3. The child serves from a
daemon thread and leaves with sys.exit() on a file change (3) or SIGTERM
(0): nothing stops the server, so every stream would be cut. And a Ctrl+C or
SIGTERM to the parent makes subprocess.run() kill the child (SIGKILL after
0.25 s for Ctrl+C) before it could drain.

This adapter replaces autoreload.run_with_reloader and reuses Django's
pieces as they are, so fixes to them apply (Django 6.1 passes ``python -u``
on as PYTHONUNBUFFERED in restart_with_reloader()):

- parent: restart_with_reloader(), with SIGINT and SIGTERM handlers that do
  not raise but tell the child to stop, through a pipe: the child reads it
  and treats its end (the parent closed it, or died) as SIGTERM.
- child: get_reloader() and start_django() as Django's run_with_reloader()
  calls them; on the way out, the server is stopped from the reloader's
  thread (servers/daphne.py drains), then the history is handed over.

Django internals this module relies on (checked by problems(), reported by
system check notifications.W202; tested with Django 5.2 to 6.1):

- ``autoreload.run_with_reloader`` is looked up at call time by runserver's
  run() (django/core/management/commands/runserver.py).
- ``autoreload.restart_with_reloader()`` copies os.environ and passes
  inheritable file descriptors on (``close_fds=False``) to each child.
- ``autoreload.get_reloader()``, ``autoreload.start_django()`` and the name of
  its server thread, "django-main-thread".
- ``autoreload.DJANGO_AUTORELOAD_ENV``, set to "true" in the child.

History handover: the parent opens an unnamed temporary file
(tempfile.TemporaryFile: O_TMPFILE, or removed at once; mode 0600) that every
child inherits by descriptor. No path names it, so no other user can read it
or plant one, and it disappears with the last process holding it, also when
the parent is killed. A child restores it at start, after checking its shape
(a WARNING and a fresh history if it is not valid), and writes it on its way
out.
"""

import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from types import FrameType

import django
from django.utils import autoreload

from ..conf import setting
from ..history import get_history
from ..topics import is_valid_name, topic_owner
from . import code_mentions, daphne

logger = logging.getLogger(__name__)

# What happens when an internal is missing (system check W202).
FALLBACK = "Django's own reloader runs, and reloads and stops cut every open stream"
# Django versions this adapter was written and tested against.
TESTED_DJANGO = [(5, 2), (6, 0), (6, 1)]
# Environment variables naming the descriptors a child inherits.
HANDOVER_FD_ENV = "NOTIFICATIONS_HISTORY_FD"
STOP_FD_ENV = "NOTIFICATIONS_STOP_FD"
# Seconds a reloader child may take to exit after its drain.
EXIT_GRACE = 2
# The thread start_django() runs the server in.
SERVER_THREAD = "django-main-thread"
# A larger handover is not restored: it cannot come from HISTORY_SIZE events
# of MAX_PAYLOAD_BYTES in a sane number of topics.
MAX_HANDOVER_BYTES = 512 * 1024 * 1024


def problems() -> list[str]:
    """Return the internals listed above that this Django lacks."""
    expected = {
        "autoreload.run_with_reloader": hasattr(autoreload, "run_with_reloader"),
        "autoreload.restart_with_reloader": hasattr(autoreload, "restart_with_reloader"),
        "autoreload.get_reloader": hasattr(autoreload, "get_reloader"),
        "autoreload.DJANGO_AUTORELOAD_ENV": hasattr(autoreload, "DJANGO_AUTORELOAD_ENV"),
        f"autoreload.start_django() with a thread named {SERVER_THREAD!r}": code_mentions(
            getattr(autoreload, "start_django", None), SERVER_THREAD
        ),
    }
    return [name for name, present in expected.items() if not present]


def untested_version() -> str | None:
    """Return the installed Django version if this adapter was not tested with it."""
    return None if django.VERSION[:2] in TESTED_DJANGO else django.get_version()


def install() -> None:
    """Replace Django's run_with_reloader, unless an internal is missing."""
    if problems():
        return  # Django's own reloader then runs; check W202 says why.
    if os.name != "posix":
        return  # Descriptors and signals to threads as used here are POSIX only.
    if autoreload.run_with_reloader is not run_with_reloader:
        autoreload.run_with_reloader = run_with_reloader


def run_with_reloader(main_func: Callable[..., object], *args, **kwargs) -> None:
    """
    Replace django.utils.autoreload.run_with_reloader: in the child, drain the
    server before leaving; in the parent, let the child drain on a stop.
    """
    if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
        sys.exit(_run_parent())
    stopping = _exit_on_first_signal()
    exit_code = 0
    try:
        _stop_when_parent_says(stopping)
        _take_history_over()
        reloader = autoreload.get_reloader()
        logger.info("Watching for file changes with %s", reloader.__class__.__name__)
        autoreload.start_django(reloader, main_func, *args, **kwargs)
    except KeyboardInterrupt:
        pass
    except SystemExit as leaving:
        exit_code = leaving.code  # 3 asks the parent for a new child.
        raise
    finally:
        stopping.set()
        _exit_if_stuck(exit_code, daphne.stop_budget() + EXIT_GRACE)
        _stop_server()
        _hand_history_over()


# Parent


def _run_parent() -> int:
    """Run Django's reloader loop; on SIGINT or SIGTERM, let the child drain."""
    handover = tempfile.TemporaryFile()
    stop_read, stop_write = os.pipe()
    for fd in (handover.fileno(), stop_read):
        os.set_inheritable(fd, True)
    os.environ[HANDOVER_FD_ENV] = str(handover.fileno())
    os.environ[STOP_FD_ENV] = str(stop_read)
    stop_pipe = [stop_write]

    def tell_child_to_stop(signum: int | None, frame: FrameType | None) -> None:
        # Closing the pipe is the message: the child sees its end. A Ctrl+C
        # also reaches the child directly; either way it drains and exits 0,
        # and restart_with_reloader() returns its status.
        if stop_pipe:
            os.close(stop_pipe.pop())

    signal.signal(signal.SIGINT, tell_child_to_stop)
    signal.signal(signal.SIGTERM, tell_child_to_stop)
    try:
        return autoreload.restart_with_reloader()
    finally:
        tell_child_to_stop(None, None)
        os.close(stop_read)
        handover.close()


# Child


def _exit_on_first_signal() -> threading.Event:
    """Leave the reloader loop on the first SIGINT or SIGTERM; ignore repeats."""
    stopping = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            sys.exit(0)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stopping


def _exit_if_stuck(exit_code: int, seconds: float) -> None:
    """
    Leave with ``exit_code`` if the process still runs ``seconds`` from now:
    after the drain, the interpreter waits for every non-daemon thread (a
    thread a view started, a sync call that never returns), and a reloader
    child must never hang its parent.
    """

    def exit_now():
        logger.error("runserver did not exit within %ss of stopping; leaving now", seconds)
        os._exit(exit_code)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


def _inherited_fd(name: str) -> int | None:
    try:
        fd = int(os.environ[name])
        # Keep it from grandchildren (a subprocess the project starts).
        os.set_inheritable(fd, False)
    except (KeyError, ValueError, OSError):
        return None
    return fd


def _stop_when_parent_says(stopping: threading.Event) -> None:
    fd = _inherited_fd(STOP_FD_ENV)
    if fd is None:
        return

    def wait_for_end_of_pipe():
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            return  # Not the parent's pipe: nothing to watch.
        if not stopping.is_set():
            # Delivered to the main thread, so its sleep in the reloader
            # loop ends at once and the handler above runs there.
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)

    threading.Thread(target=wait_for_end_of_pipe, name="notifications-stop-pipe", daemon=True).start()


def _stop_server() -> None:
    server_thread = next((t for t in threading.enumerate() if t.name == SERVER_THREAD), None)
    if server_thread is None:
        return
    try:
        daphne.stop_reactor_from(server_thread, daphne.stop_budget() + 1)
    except Exception as error:  # The process leaves anyway, as Django's reloader would.
        logger.error("Stopping the server failed (%r); leaving, open streams are cut", error)


def _handover_fd() -> int | None:
    """Return the inherited handover file, if there is one and this history can be handed over."""
    history = get_history()
    if not (hasattr(history, "dump") and hasattr(history, "restore")):
        return None  # A shared history (Redis) needs no handover.
    return _inherited_fd(HANDOVER_FD_ENV)


def _take_history_over() -> None:
    fd = _handover_fd()
    if fd is None:
        return
    try:
        size = os.fstat(fd).st_size
        if not size:
            return  # The first child: nothing to take over.
        if size > MAX_HANDOVER_BYTES:
            raise ValueError(f"{size} bytes is more than {MAX_HANDOVER_BYTES}")
        state = json.loads(_read_all(fd, size))
        _check_history_state(state)
        get_history().restore(state)
    except Exception as error:  # Whatever is wrong with it, runserver must start.
        logger.warning("Discarding the history handed over by the previous runserver process: %s", error)
    finally:
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass


def _hand_history_over() -> None:
    fd = _handover_fd()
    if fd is None:
        return
    try:
        data = json.dumps(get_history().dump()).encode()
        os.ftruncate(fd, 0)
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], written)
    except OSError as error:
        logger.warning("Could not hand the history over to the next runserver process: %s", error)


def _read_all(fd: int, size: int) -> bytes:
    parts, offset = [], 0
    while offset < size:
        part = os.pread(fd, size - offset, offset)
        if not part:
            break
        parts.append(part)
        offset += len(part)
    return b"".join(parts)


def _check_history_state(state: object) -> None:
    """Raise ValueError unless ``state`` has the shape InMemoryHistory.dump() returns."""

    def require(condition: bool, what: str) -> None:
        if not condition:
            raise ValueError(f"{what} is not valid")

    def is_seq(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    require(isinstance(state, dict) and set(state) == {"epoch", "seq", "evicted", "events"}, "its shape")
    epoch, seq = state["epoch"], state["seq"]
    require(isinstance(epoch, str) and 0 < len(epoch) <= 64 and epoch.isalnum(), "its epoch")
    require(is_seq(seq), "its seq")

    def is_topic(name: object) -> bool:
        return is_valid_name(name) or (isinstance(name, str) and topic_owner(name) is not None)

    evicted, events = state["evicted"], state["events"]
    require(isinstance(evicted, dict) and isinstance(events, dict), "its topics")
    for topic, last in evicted.items():
        require(is_topic(topic) and is_seq(last) and last <= seq, f"evicted topic {topic!r}")
    size, max_payload = setting("HISTORY_SIZE"), setting("MAX_PAYLOAD_BYTES")
    for topic, rows in events.items():
        require(is_topic(topic) and isinstance(rows, list) and len(rows) <= size, f"topic {topic!r}")
        for row in rows:
            require(
                isinstance(row, list)
                and len(row) == 4
                and is_seq(row[0])
                and row[0] <= seq
                and is_valid_name(row[1])
                and isinstance(row[2], str)
                and len(row[2]) <= max_payload
                and row[3] == f"{epoch}-{row[0]}",
                f"an event of topic {topic!r}",
            )
