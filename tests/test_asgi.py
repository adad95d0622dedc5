"""
StreamingASGIHandler: stream routes run without a per-request thread.

The observable is the thread that runs a request's thread-sensitive sync
work (Django's request_started receivers are such work). Inside Django's
per-request ThreadSensitiveContext it is a new thread for every request;
without it, it is asgiref's one shared executor thread.
"""

import threading

import pytest
from asgiref.sync import sync_to_async
from django.core.signals import request_started

from notifications.asgi import StreamingASGIHandler

from .asgi_client import application


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
        response = await asgi("/sse/publish/alpha/").start()
        assert response.status == 405
        await response.rest()

    threads = sync_threads["/sse/publish/alpha/"]
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
