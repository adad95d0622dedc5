"""
Stream requests run NOTIFICATIONS['STREAM_MIDDLEWARE'], async-only, instead
of settings.MIDDLEWARE: opening a stream costs no thread hop for middleware
that a stream does not need, and still knows its user from the session.
"""

import pytest
from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.test import override_settings

from notifications.checks import check_settings

from .support import create_user, get, notifications_settings, session_headers

seen: list[str] = []
needs_database = pytest.mark.django_db(transaction=True)


class RecordingMiddleware:
    """A sync-only project middleware: Django runs it in a thread for async requests."""

    sync_capable, async_capable = True, False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        seen.append(request.path)
        return self.get_response(request)


class StampingMiddleware:
    """An async project middleware chosen for streams."""

    sync_capable, async_capable = False, True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        response = await self.get_response(request)
        response["X-Stamped"] = "yes"
        return response


def with_recording_middleware():
    return override_settings(
        MIDDLEWARE=[*settings.MIDDLEWARE, "tests.test_stream_middleware.RecordingMiddleware"]
    )


async def test_stream_requests_skip_the_projects_middleware_other_requests_run_it():
    seen.clear()
    with with_recording_middleware():
        stream = await get("/sse/subscribe/announcement/")
        page = await get("/")

    assert stream.status == page.status == 200
    assert seen == ["/"]


@needs_database
async def test_a_private_stream_still_knows_its_user_from_the_session():
    alice = await create_user("alice")
    with with_recording_middleware():
        own = await get(f"/sse/subscribe/user.{alice.pk}/", headers=await session_headers(alice))
        anonymous = await get(f"/sse/subscribe/user.{alice.pk}/")

    assert own.status == 200
    assert anonymous.status == 401


@needs_database
async def test_stream_middleware_setting_replaces_the_default():
    alice = await create_user("alice")
    with notifications_settings(STREAM_MIDDLEWARE=["tests.test_stream_middleware.StampingMiddleware"]):
        stamped = await get("/sse/subscribe/announcement/")
        # Without the session twin a stream cannot know its user.
        private = await get(f"/sse/subscribe/user.{alice.pk}/", headers=await session_headers(alice))

    assert stamped.headers["x-stamped"] == "yes"
    assert private.status == 401


def test_e009_stream_middleware_must_import_and_be_async():
    paths = ["tests.test_stream_middleware.RecordingMiddleware", "no.such.Middleware"]
    with notifications_settings(STREAM_MIDDLEWARE=paths):
        errors = check_settings(None)

    assert [error.id for error in errors] == ["notifications.E009"] * 2
    assert errors[0].msg == (
        "NOTIFICATIONS['STREAM_MIDDLEWARE'] names 'tests.test_stream_middleware.RecordingMiddleware', "
        "which is not async-capable."
    )
    assert "cannot be imported" in errors[1].msg


async def test_publishing_over_http_skips_the_projects_middleware_too():
    seen.clear()
    with with_recording_middleware():
        response = await get(
            "/sse/publish/alpha/",
            method="POST",
            body=b"{}",
            headers=[(b"authorization", f"Bearer {settings.NOTIFICATIONS['PUBLISH_TOKEN']}".encode())],
        )

    assert response.status == 202
    assert seen == []
