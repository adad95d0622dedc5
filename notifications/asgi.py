"""
The ASGI application for projects that serve event streams.

Django runs each request inside its own asgiref ThreadSensitiveContext, and
the first thread-sensitive sync call of a request (Django's own
request_started receivers are one) creates a thread that lives as long as
the request. For an event stream that is an OS thread per open connection.
Requests for stream views skip that per-request context: their few sync
calls at connect time share asgiref's single executor thread instead.

Django's ``ASGIHandler.handle()`` then serves the response inside an
``asyncio.TaskGroup`` with a task that listens for the client's disconnect,
and ends each request with ``await sync_to_async(response.close)()``, which
sends request_finished: one thread hop per request. When thousands of
streams end together (a drain), unwinding those task groups and those hops
take seconds (about 170 µs a hop on 2 cores, most of it handing each call
between the event loop and the thread). Stream requests are therefore served
by ``handle_event_stream()``: Django's ``handle()`` step by step, with the
same methods, signals and order, except that

- a ``DisconnectWatcher`` task cancels the request when the client leaves,
  as Django's task group does, without a task group to unwind after every
  response;
- a stream's last part and the end of its response go out as one message
  (``EndWithLastPart``), where Django sends the end after it: one write
  less through the server per stream;
- the responses that end in the same turn of the event loop are closed with
  one hop (``BatchedClose``): each ``response.close()`` still runs, in the
  thread Django would use (asgiref's shared executor: stream requests have
  no ThreadSensitiveContext) and in a copy of its request's context, so
  request_finished reaches the same receivers as before, once per request.

Every other request is served by Django itself.

Django internals this relies on (django/core/handlers/asgi.py, the same
from Django 5.2 to 6.1; checked by problems(), reported by system check
notifications.W203): ``ASGIHandler.read_body()``, ``.create_request()``,
``.run_get_response()``, ``.send_response()`` and the module's
``get_script_prefix(scope)``, which ``handle()`` is made of. And from
asgiref (tested with 3.13): ``asgiref.sync._restore_context()``, which
sync_to_async() runs to make a request's Local values visible in the
thread; the batch runs it for each response. Without any of them, stream
requests are served by Django's own ``handle()`` (the drain is slower,
nothing else changes).
"""

import asyncio
import contextvars
import functools
import weakref
from collections.abc import Awaitable, Callable
from contextlib import closing

import django
from asgiref import sync as asgiref_sync
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import ImproperlyConfigured, RequestAborted
from django.core.handlers import asgi as django_asgi
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_resolver, set_script_prefix
from django.utils.module_loading import import_string

from .conf import setting
from .protocol import LAST_PART

# ASGI's receive() and send(), as this package uses them: messages are plain dicts.
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
# An ASGI 3 application: called with the connection's scope, receive() and send().
Application = Callable[[dict, Receive, Send], Awaitable[None]]

# The newest Django whose ASGIHandler.handle() handle_event_stream() was compared with.
TESTED_DJANGO = (6, 1)
# Set for the requests of stream views: they run NOTIFICATIONS['STREAM_MIDDLEWARE'].
_stream_request = contextvars.ContextVar("notifications_stream_request", default=False)


def problems() -> list[str]:
    """Return the internals listed above that this Django or asgiref lacks."""
    expected = {
        f"ASGIHandler.{name}()": callable(getattr(ASGIHandler, name, None))
        for name in ("read_body", "create_request", "run_get_response", "send_response")
    }
    expected["django.core.handlers.asgi.get_script_prefix()"] = hasattr(django_asgi, "get_script_prefix")
    expected["asgiref.sync._restore_context()"] = hasattr(asgiref_sync, "_restore_context")
    return [name for name, present in expected.items() if not present]


def untested_version() -> str | None:
    """Return the installed Django version if it is newer than the one this was tested with."""
    return django.get_version() if django.VERSION[:2] > TESTED_DJANGO else None


# What happens when an internal is missing (system check W203).
FALLBACK = (
    "stream requests are served by Django's own handle(), so a drain of thousands of "
    "streams takes seconds longer"
)


@functools.cache
def _serves_streams_itself() -> bool:
    return not problems()


class StreamingASGIHandler(ASGIHandler):
    """Django's ASGIHandler, without a thread per open event stream or a thread hop per ended one."""

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._serves_event_stream(scope):
            _stream_request.set(True)
            if _serves_streams_itself():
                await self.handle_event_stream(scope, receive, send)
            else:
                await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def handle_event_stream(self, scope: dict, receive: Receive, send: Send) -> None:
        """Serve a stream request as Django's handle() does (see the module docstring)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            set_script_prefix(django_asgi.get_script_prefix(scope))
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                body_file.close()
                await self.send_response(error_response, send)
                await _closer().close(error_response)
                return
            response = None
            watcher = DisconnectWatcher(receive)
            try:
                response = await self.run_get_response(request)
                await self.send_response(response, EndWithLastPart(send))
            except asyncio.CancelledError:
                if not watcher.cancelled_the_request():
                    raise
            finally:
                watcher.stop()
            if response is None:
                await signals.request_finished.asend(sender=self.__class__)
            else:
                await _closer().close(response)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if _stream_request.get():
            return await _stream_middleware().get_response_async(request)
        return await super().get_response_async(request)

    @staticmethod
    def _serves_event_stream(scope) -> bool:
        path = scope["path"]
        root_path = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return False
        return getattr(match.func, "serves_event_stream", False)


class EndWithLastPart:
    """
    An ASGI ``send`` that sends a stream's last part (protocol.last_part())
    and the end of the response as one message. Only the last part is held,
    and only until the message that follows it, in the same turn of the loop.
    """

    __slots__ = ("_send", "_held")

    def __init__(self, send: Send):
        self._send = send
        self._held: dict | None = None

    async def __call__(self, message: dict) -> None:
        if message["type"] == "http.response.body":
            held, self._held = self._held, None
            if held is not None:
                if not message.get("more_body") and not message.get("body"):
                    await self._send({**held, "more_body": False})
                    return
                await self._send(held)  # The last part came in several chunks.
            if message.get("more_body") and LAST_PART.get():
                self._held = message
                return
        await self._send(message)


class DisconnectWatcher:
    """
    Cancel the running task (a request) when its client disconnects, until
    stop(): what the task of Django's listen_for_disconnect() does inside a
    task group, for a request that then knows why it was cancelled.

    A server whose ``receive`` belongs to an object with ``hand_next_to()``
    (the Daphne adapter's ReceiveQueue) hands the next message over directly;
    with any other server a task waits in ``receive()``.
    """

    __slots__ = ("_request", "_task", "_stopped", "_cancelled", "_error")

    def __init__(self, receive: Receive):
        self._request = asyncio.current_task()
        self._stopped = False
        self._cancelled = False
        self._error: Exception | None = None
        self._task = None
        hand_next_to = getattr(getattr(receive, "__self__", None), "hand_next_to", None)
        if hand_next_to is not None:
            hand_next_to(self._received_soon)
        else:
            self._task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive) -> None:
        self._received(await receive())

    def _received_soon(self, message: dict) -> None:
        if message["type"] == "http.disconnect" and asyncio.current_task() is self._request:
            # Put by the request's own send of the end of its response
            # (Daphne's finish() does): the request stops watching before
            # it next awaits, so there is nothing to cancel. At 10,000
            # streams, that is 10,000 callbacks fewer in a drain.
            return
        # Put by the server on its own: look in the next turn, so that a
        # request that is ending has stopped watching by then.
        asyncio.get_running_loop().call_soon(self._received, message)

    def _received(self, message: dict) -> None:
        if self._stopped:
            return
        if message["type"] != "http.disconnect":
            # As in Django, nothing but a disconnect may follow the request body.
            self._error = AssertionError(f"Invalid ASGI message after request body: {message['type']}")
        self._cancelled = True
        self._request.cancel()

    def cancelled_the_request(self) -> bool:
        """
        Return whether the request's CancelledError is this watcher's doing
        (the client left), and if so take the cancellation back so that the
        request can finish. Raise what made it cancel the request otherwise.
        """
        if not self._cancelled:
            return False
        self._request.uncancel()
        if self._error is not None:
            raise self._error
        return True

    def stop(self) -> None:
        """Stop watching: the response was sent, or the request is over."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()


class BatchedClose:
    """
    Close the responses of one event loop that end in the same turn of the
    loop with one thread hop, each in its own request's context.
    """

    def __init__(self):
        self._batch: list[tuple[object, contextvars.Context]] = []
        self._waiters: list[asyncio.Future] = []
        self._closing: asyncio.Task | None = None

    async def close(self, response: HttpResponseBase) -> None:
        """Close ``response`` like ``await sync_to_async(response.close)()`` does."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close_batch())
        # One future per response, not one shared future shielded by each:
        # a request cancelled while it waits (a forced stop cancels thousands)
        # must neither cancel the others' close nor cost them anything
        # (unshielding one of N waiters of a future is O(N)).
        waiter = asyncio.get_running_loop().create_future()
        self._batch.append((response, contextvars.copy_context()))
        self._waiters.append(waiter)
        error = await waiter
        if error is not None:
            raise error

    async def _close_batch(self) -> None:
        # A task's first step runs in the next turn of the loop: the
        # responses that ended in this turn have joined the batch by then.
        batch, waiters = self._batch, self._waiters
        self._batch, self._waiters, self._closing = [], [], None
        try:
            errors = await sync_to_async(_close_all)(batch)
        except Exception as error:  # The hop itself failed: every waiter hears of it.
            errors = dict.fromkeys((response for response, _ in batch), error)
        for (response, _), waiter in zip(batch, waiters, strict=True):
            if not waiter.done():
                waiter.set_result(errors.get(response))


def _close_all(batch: list) -> dict:
    errors = {}
    for response, context in batch:
        try:
            context.run(_close_in_context, response, context)
        except Exception as error:  # Raised to that request alone, as Django would.
            errors[response] = error
    return errors


def _close_in_context(response, context: contextvars.Context) -> None:
    # What sync_to_async() does before it calls a function: asgiref's Local
    # values (Django keeps the script prefix and the active translation in
    # them) belong to a thread and must be moved to this one to be seen.
    asgiref_sync._restore_context(context)
    response.close()


_closers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BatchedClose]" = weakref.WeakKeyDictionary()


def _closer() -> BatchedClose:
    loop = asyncio.get_running_loop()
    closer = _closers.get(loop)
    if closer is None:
        closer = _closers[loop] = BatchedClose()
    return closer


class StreamMiddlewareHandler(BaseHandler):
    """
    The middleware chain of stream requests: NOTIFICATIONS['STREAM_MIDDLEWARE']
    in place of settings.MIDDLEWARE, async-capable middleware only, so that
    opening a stream costs no thread hop beyond what its view awaits.
    """

    def __init__(self, paths: list[str]):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(paths):
            middleware = import_string(path)
            if not getattr(middleware, "async_capable", False):
                raise ImproperlyConfigured(
                    f"NOTIFICATIONS['STREAM_MIDDLEWARE'] names {path!r}, which is not async-capable. "
                    "Stream requests run async middleware only."
                )
            handler = convert_exception_to_response(middleware(handler))
        self._middleware_chain = handler


def stream_middleware_paths() -> list[str]:
    """Return the middleware stream requests run: the setting, or the async twins of the project's."""
    paths = setting("STREAM_MIDDLEWARE")
    if paths is not None:
        return list(paths)
    return [twin for path, twin in STREAM_TWINS.items() if path in settings.MIDDLEWARE]


# Django's middleware a stream needs (to know its user), and their async twins.
STREAM_TWINS = {
    "django.contrib.sessions.middleware.SessionMiddleware": (
        "notifications.middleware.StreamSessionMiddleware"
    ),
    "django.contrib.auth.middleware.AuthenticationMiddleware": (
        "notifications.middleware.StreamAuthenticationMiddleware"
    ),
}


@functools.cache
def _stream_middleware() -> StreamMiddlewareHandler:
    return StreamMiddlewareHandler(stream_middleware_paths())


def _forget_stream_middleware(setting: str, **kwargs) -> None:
    if setting in ("NOTIFICATIONS", "MIDDLEWARE"):
        _stream_middleware.cache_clear()


setting_changed.connect(_forget_stream_middleware, dispatch_uid="notifications.asgi.stream_middleware")


def get_asgi_application() -> StreamingASGIHandler:
    """
    Set up Django and return the ASGI application (like Django's own). Only
    serving processes build it, so the embedded task worker starts here
    when NOTIFICATIONS['EMBEDDED_TASK_WORKER'] asks for one, and the
    garbage collector is tuned here (NOTIFICATIONS['GC_THRESHOLDS']).
    """
    django.setup(set_prefix=False)
    from . import process
    from .tasks import worker as task_worker

    process.tune_garbage_collection()

    task_worker.start()
    return StreamingASGIHandler()
