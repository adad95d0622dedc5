"""
StreamingASGIHandler: stream routes run without a per-request thread, and
streams that end together finish their requests with one thread hop.

The observable is the thread that runs a request's thread-sensitive sync
work (Django's request_started receivers are such work). Inside Django's
per-request ThreadSensitiveContext it is a new thread for every request;
without it, it is asgiref's one shared executor thread.
"""

import asyncio
import threading

import django
import pytest
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.test import override_settings
from django.urls import get_script_prefix, path

from notifications import asgi as asgi_module
from notifications.asgi import EndWithLastPart, StreamingASGIHandler, _close_all
from notifications.hub import get_hub
from notifications.lifecycle import drain
from notifications.protocol import LAST_PART

from .asgi_client import AsgiRequest, application
from .support import notifications_settings


@pytest.fixture
def sync_threads():
    """Record, per request path, the thread that ran Django's request_started."""
    threads: dict[str, list[threading.Thread]] = {}

    def record_thread(sender, scope, **kwargs):
        threads.setdefault(scope["path"], []).append(threading.current_thread())

    request_started.connect(record_thread, dispatch_uid="test_asgi.record_thread")
    yield threads
    request_started.disconnect(dispatch_uid="test_asgi.record_thread")


async def shared_executor_thread() -> threading.Thread:
    # Outside any ThreadSensitiveContext, thread-sensitive calls run here.
    return await sync_to_async(threading.current_thread)()


async def test_stream_requests_share_the_one_executor_thread(asgi, sync_threads):
    for _ in range(3):
        stream = await asgi("/sse/subscribe/alpha/").start()
        assert stream.status == 200
        await stream.body()

    shared = await shared_executor_thread()
    assert sync_threads["/sse/subscribe/alpha/"] == [shared] * 3


async def test_stream_route_refusals_also_skip_the_per_request_thread(asgi, sync_threads):
    response = await asgi("/sse/subscribe/nope/").start()

    assert response.status == 404
    assert sync_threads["/sse/subscribe/nope/"] == [await shared_executor_thread()]


async def test_other_requests_get_a_new_thread_each_as_django_does(asgi, sync_threads):
    for _ in range(3):
        response = await asgi("/sse/metrics/").start()
        assert response.status == 404
        await response.rest()

    threads = sync_threads["/sse/metrics/"]
    assert len(set(threads)) == 3
    assert await shared_executor_thread() not in threads


async def test_unresolvable_paths_are_served_by_django(asgi, sync_threads):
    response = await asgi("/no/such/page/").start()

    assert response.status == 404
    assert sync_threads["/no/such/page/"] != [await shared_executor_thread()]


async def test_stream_routes_are_recognised_under_a_root_path(asgi, sync_threads):
    stream = await asgi("/app/sse/subscribe/alpha/", root_path="/app").start()

    assert stream.status == 200
    assert (await stream.body()).startswith(b"retry: 2000\n\n")
    assert sync_threads["/app/sse/subscribe/alpha/"] == [await shared_executor_thread()]


async def test_non_http_scopes_are_refused_as_django_does():
    with pytest.raises(ValueError, match="Django can only handle ASGI/HTTP connections, not lifespan."):
        await application({"type": "lifespan"}, None, None)


def test_project_application_is_the_streaming_handler():
    from project.asgi import application as project_application

    assert isinstance(project_application, StreamingASGIHandler)


@pytest.fixture
def finished_requests():
    """Record, for each request_finished, the thread and the request's script prefix."""
    finished: list[tuple[threading.Thread, str]] = []

    def record(sender, **kwargs):
        finished.append((threading.current_thread(), get_script_prefix()))

    request_finished.connect(record, dispatch_uid="test_asgi.finished_requests")
    yield finished
    request_finished.disconnect(dispatch_uid="test_asgi.finished_requests")


def batched_close_applies() -> bool:
    """Return whether stream requests are served by handle_event_stream() (W203 silent)."""
    return asgi_module._serves_streams_itself()


@pytest.fixture
def close_batches(monkeypatch):
    """Record the size of each batch of responses closed in one thread hop."""
    sizes: list[int] = []

    def recording_close_all(batch):
        sizes.append(len(batch))
        return _close_all(batch)

    monkeypatch.setattr(asgi_module, "_close_all", recording_close_all)
    return sizes


async def test_streams_that_end_together_finish_their_requests_in_one_thread_hop(
    asgi, finished_requests, close_batches
):
    streams = [await asgi("/sse/subscribe/alpha/", root_path=f"/app{n}").start() for n in range(20)]
    for stream in streams:
        await stream.body()

    assert await drain(2) == 0
    for stream in streams:
        assert b"server_shutdown" in await stream.rest()
    await asyncio.wait_for(asyncio.gather(*(stream.task for stream in streams)), 5)

    assert close_batches == ([20] if batched_close_applies() else [])
    shared = await shared_executor_thread()
    assert [thread for thread, _ in finished_requests] == [shared] * 20, "the thread Django would use"
    prefixes = sorted(prefix for _, prefix in finished_requests)
    assert prefixes == sorted(f"/app{n}/" for n in range(20)), "each in its own request's context"


async def test_a_stream_the_client_leaves_finishes_its_request_once(asgi, finished_requests, close_batches):
    stream = await asgi("/sse/subscribe/alpha/").start()
    await stream.body()
    hub = get_hub()
    assert hub.count == 1

    await stream.disconnect()
    await asyncio.wait_for(stream.task, 2)

    assert hub.count == 0, "the stream's generator was closed"
    assert close_batches == ([1] if batched_close_applies() else [])
    assert [thread for thread, _ in finished_requests] == [await shared_executor_thread()]


# The event loop's views that started, set by each test (an Event belongs to one loop).
started_views: list[asyncio.Event] = []


async def slow_stream_view(request):
    started_views[-1].set()
    await asyncio.Event().wait()  # Until the request is cancelled.


slow_stream_view.serves_event_stream = True
urlpatterns = [path("slow-stream/", slow_stream_view)]


@pytest.fixture
def view_started():
    started_views.append(asyncio.Event())
    yield started_views[-1]
    started_views.clear()


@override_settings(ROOT_URLCONF=__name__)
async def test_a_client_that_leaves_before_the_response_finishes_the_request_once(
    finished_requests, view_started
):
    request = AsgiRequest("/slow-stream/")
    await asyncio.wait_for(view_started.wait(), 2)

    await request.disconnect()

    assert await asyncio.wait_for(request.task, 2) is None
    assert len(finished_requests) == 1


@override_settings(ROOT_URLCONF=__name__)
async def test_a_message_other_than_disconnect_after_the_body_fails_the_request_as_in_django(view_started):
    request = AsgiRequest("/slow-stream/")
    await asyncio.wait_for(view_started.wait(), 2)

    request._inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})

    with pytest.raises(AssertionError, match="Invalid ASGI message after request body: http.request"):
        await asyncio.wait_for(request.task, 2)


async def test_without_the_internals_it_needs_a_stream_is_served_by_djangos_own_handle(
    monkeypatch, finished_requests, close_batches
):
    monkeypatch.setattr(asgi_module, "_serves_streams_itself", lambda: False)
    handled_by_django = []
    django_handle = StreamingASGIHandler.handle

    async def handle(self, *args):
        handled_by_django.append(args[0]["path"])
        await django_handle(self, *args)

    monkeypatch.setattr(StreamingASGIHandler, "handle", handle)
    stream = await AsgiRequest("/sse/subscribe/alpha/").start()
    assert (await stream.body()).startswith(b"retry: 2000")

    assert await drain(2) == 0
    assert b"server_shutdown" in await stream.rest()
    await asyncio.wait_for(stream.task, 5)

    assert handled_by_django == ["/sse/subscribe/alpha/"]
    assert close_batches == []
    assert len(finished_requests) == 1


async def test_an_error_in_a_request_finished_receiver_reaches_that_request_only(close_batches):
    failing = {"/app1/"}

    def fail_for_one_request(sender, **kwargs):
        if get_script_prefix() in failing:
            raise RuntimeError("receiver failed")

    request_finished.connect(fail_for_one_request, dispatch_uid="test_asgi.fail")
    try:
        streams = [await AsgiRequest("/sse/subscribe/alpha/", root_path=f"/app{n}").start() for n in range(3)]
        for stream in streams:
            await stream.body()
        await drain(2)
        results = await asyncio.wait_for(
            asyncio.gather(*(stream.task for stream in streams), return_exceptions=True), 5
        )
    finally:
        request_finished.disconnect(dispatch_uid="test_asgi.fail")

    assert [repr(result) for result in results] == ["None", "RuntimeError('receiver failed')", "None"]
    assert results[1].__context__ is None, "raised as from Django's own close"
    assert close_batches == ([3] if batched_close_applies() else [])


def test_check_names_the_missing_internals_of_handle_event_stream(monkeypatch):
    from asgiref import sync

    from notifications.checks import check_servers

    monkeypatch.delattr(sync, "_restore_context")
    monkeypatch.delattr(ASGIHandler, "run_get_response")

    [warning] = check_servers()
    assert warning.id == "notifications.W203"
    assert "ASGIHandler.run_get_response(), asgiref.sync._restore_context()" in warning.msg
    assert "served by Django's own handle()" in warning.msg


def test_check_warns_about_a_django_newer_than_the_one_compared_with(monkeypatch):
    from notifications.checks import check_servers

    monkeypatch.setattr(django, "VERSION", (6, 2, 0, "final", 0))
    monkeypatch.setattr(django, "get_version", lambda: "6.2")

    warnings = [warning for warning in check_servers() if warning.id == "notifications.W203"]
    assert [warning.msg for warning in warnings] == [
        "Django's ASGI handler 6.2 is not a version the clean stop was tested with."
    ]


@pytest.mark.parametrize("configured", [(700, 100, 10), (1000, 50, 20), None])
def test_a_serving_process_gets_the_configured_garbage_collector_thresholds(configured):
    import gc

    from notifications import process

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with notifications_settings(GC_THRESHOLDS=configured):
            process.tune_garbage_collection()
        assert gc.get_threshold() == (configured or (700, 10, 10))
    finally:
        gc.set_threshold(*before)


async def test_a_streams_last_part_and_the_end_of_its_response_are_one_message(asgi):
    stream = await asgi("/sse/subscribe/alpha/").start()
    await stream.body()

    assert await drain(2) == 0

    last = await stream.body()
    assert b"event: server_shutdown" in last
    assert stream.ended, "the farewell came in the message that ends the response"


async def test_only_the_last_part_waits_for_the_end_of_the_response():
    sent = []

    async def send(message):
        sent.append((message.get("body"), message.get("more_body", False)))

    send_ending = EndWithLastPart(send)
    await send_ending({"type": "http.response.body", "body": b"live", "more_body": True})
    assert sent == [(b"live", True)], "an event goes out at once"
    token = LAST_PART.set(True)
    try:
        # A last part bigger than Django's chunk size comes in several chunks.
        await send_ending({"type": "http.response.body", "body": b"last-1", "more_body": True})
        await send_ending({"type": "http.response.body", "body": b"last-2", "more_body": True})
        assert sent == [(b"live", True), (b"last-1", True)]
        await send_ending({"type": "http.response.body"})
    finally:
        LAST_PART.reset(token)
    assert sent == [(b"live", True), (b"last-1", True), (b"last-2", False)]
