"""GET /sse/client.mjs: the browser client as an ES module, for pages of allowed origins."""

import pytest

from notifications.views import CLIENT_MODULE

from .support import get, notifications_settings

pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
PATH = "/sse/client.mjs"


async def test_serves_the_static_module_as_javascript():
    response = await get(PATH)
    assert response.status == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.body == CLIENT_MODULE.read_bytes()
    assert b"export function connect(" in response.body


async def test_allowed_origin_may_import_it_with_credentials():
    with notifications_settings(ALLOWED_ORIGINS=[APP], ALLOW_CREDENTIALS=True):
        response = await get(PATH, headers=[(b"origin", APP.encode())])
    assert response.status == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_other_origin_is_refused():
    response = await get(PATH, headers=[(b"origin", APP.encode())])
    assert response.status == 403
