"""Cross-origin streams: refused by default, allowed per origin, never '*' with credentials."""

import pytest

from notifications.cors import ALLOWED_REQUEST_HEADERS

from .support import get, notifications_settings

# Requests end with Django's close_old_connections, which touches the database.
pytestmark = pytest.mark.django_db

APP = "https://app.example.com"
STREAM = "/sse/subscribe/announcement/"


def origin(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"origin", value.encode())]


def preflight(value: str) -> dict:
    return {
        "method": "OPTIONS",
        "headers": [
            *origin(value),
            (b"access-control-request-method", b"GET"),
            (b"access-control-request-headers", b"last-event-id"),
        ],
    }


async def test_other_origin_is_refused_by_default():
    response = await get(STREAM, headers=origin(APP))
    assert response.status == 403
    assert response.body == (
        b"Origin 'https://app.example.com' may not open streams here. "
        b"Add it to NOTIFICATIONS['ALLOWED_ORIGINS'].\n"
    )
    assert "access-control-allow-origin" not in response.headers


async def test_same_origin_with_origin_header_is_served_without_cors_headers():
    response = await get(STREAM, headers=origin("http://testserver"))
    assert response.status == 200
    assert "access-control-allow-origin" not in response.headers


async def test_request_without_origin_is_served():
    response = await get(STREAM)
    assert response.status == 200


async def test_allowed_origin_gets_its_own_name_back():
    with notifications_settings(ALLOWED_ORIGINS=[APP]):
        allowed = await get(STREAM, headers=origin(APP))
        other = await get(STREAM, headers=origin("https://evil.example.com"))
    assert allowed.status == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    assert "Origin" in allowed.headers["vary"]
    assert "access-control-allow-credentials" not in allowed.headers
    assert other.status == 403


async def test_credentials_are_allowed_only_when_configured():
    with notifications_settings(ALLOWED_ORIGINS=[APP], ALLOW_CREDENTIALS=True):
        response = await get(STREAM, headers=origin(APP))
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-origin"] == APP


async def test_any_origin_without_credentials_gets_star():
    with notifications_settings(ALLOWED_ORIGINS=["*"]):
        response = await get(STREAM, headers=origin("https://anyone.example"))
    assert response.headers["access-control-allow-origin"] == "*"


async def test_star_is_never_combined_with_credentials():
    with notifications_settings(ALLOWED_ORIGINS=["*"], ALLOW_CREDENTIALS=True):
        response = await get(STREAM, headers=origin("https://anyone.example"))
    assert response.status == 403
    assert "access-control-allow-origin" not in response.headers


async def test_error_answers_carry_cors_headers_too():
    with notifications_settings(ALLOWED_ORIGINS=[APP]):
        response = await get("/sse/subscribe/unknown/", headers=origin(APP))
    assert response.status == 404
    assert response.headers["access-control-allow-origin"] == APP


async def test_preflight_from_allowed_origin():
    with notifications_settings(ALLOWED_ORIGINS=[APP], ALLOW_CREDENTIALS=True):
        response = await get(STREAM, **preflight(APP))
    assert response.status == 204
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-methods"] == "GET"
    assert response.headers["access-control-allow-headers"] == ALLOWED_REQUEST_HEADERS
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_preflight_from_other_origin_is_refused():
    with notifications_settings(ALLOWED_ORIGINS=[APP]):
        response = await get(STREAM, **preflight("https://evil.example.com"))
    assert response.status == 403


async def test_options_without_preflight_is_not_allowed():
    response = await get(STREAM, method="OPTIONS")
    assert response.status == 405
