"""The subscribe view mounted at a FastAPI service's paths (tests/api_urls.py)."""

import pytest

from notifications.asgi import StreamingASGIHandler
from notifications.testing import http_scope

from .support import get

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api_urls")]


async def test_subscribe_path_without_trailing_slash_streams_without_a_redirect():
    response = await get("/api/sse/subscribe/announcement", query_string=b"keepalive=event")
    assert response.status == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"


def test_it_is_served_as_a_stream_without_a_thread():
    assert StreamingASGIHandler._serves_event_stream(http_scope("/api/sse/subscribe/announcement"))
    assert StreamingASGIHandler._serves_event_stream(http_scope("/api/sse/subscribe/"))


async def test_the_app_urls_work_under_api():
    response = await get("/api/sse/subscribe/", query_string=b"types=announcement")
    assert response.status == 200
