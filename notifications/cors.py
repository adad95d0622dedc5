"""
Cross-origin access to event streams.

Off by default: a page of another origin gets no stream. Origins listed in
``NOTIFICATIONS["ALLOWED_ORIGINS"]`` get CORS headers; with
``ALLOW_CREDENTIALS`` their ``EventSource(url, {withCredentials: true})``
carries the session cookie. Credentials are never combined with ``*``: the
answer names the one origin that asked, and a system check refuses ``*``
with credentials.
"""

import functools
from collections.abc import Awaitable, Callable

from django.http import HttpRequest, HttpResponse

from .conf import setting

ANY_ORIGIN = "*"
# Headers an EventSource may send that are not CORS-safelisted.
ALLOWED_REQUEST_HEADERS = "Last-Event-ID, Cache-Control"
# Seconds a browser may cache a preflight answer.
PREFLIGHT_MAX_AGE = 600


def _own_origin(request: HttpRequest) -> str:
    # As Django's CSRF origin check does: the proxy must pass Host and scheme.
    return f"{request.scheme}://{request.get_host()}"


def cors_headers(request: HttpRequest) -> dict[str, str] | None:
    """
    Return the CORS headers the response to ``request`` needs: none for a
    same-origin request, some for an allowed origin, None when the request
    comes from an origin that is not allowed.
    """
    origin = request.headers.get("Origin")
    if origin is None or origin == _own_origin(request):
        return {}
    allowed = setting("ALLOWED_ORIGINS")
    credentials = setting("ALLOW_CREDENTIALS")
    if origin in allowed:
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers
    if ANY_ORIGIN in allowed and not credentials:
        return {"Access-Control-Allow-Origin": ANY_ORIGIN}
    return None


def _refused(origin: str) -> HttpResponse:
    return HttpResponse(
        f"Origin {origin!r} may not open streams here. Add it to NOTIFICATIONS['ALLOWED_ORIGINS'].\n",
        status=403,
        content_type="text/plain; charset=utf-8",
    )


def with_cors(view: Callable[..., Awaitable[HttpResponse]]) -> Callable[..., Awaitable[HttpResponse]]:
    """Refuse foreign origins, answer preflights, and add CORS headers to ``view``'s answers."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        headers = cors_headers(request)
        if headers is None:
            return _refused(request.headers["Origin"])
        if headers and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = "GET"
            response["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        else:
            response = await view(request, *args, **kwargs)
        for name, value in headers.items():
            response[name] = value
        return response

    return wrapper
