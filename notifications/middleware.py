"""
Middleware for event-stream requests: async-native, nothing but what a
stream needs to decide access.

A stream request runs NOTIFICATIONS['STREAM_MIDDLEWARE'] instead of
settings.MIDDLEWARE (see asgi.py). Django's own SessionMiddleware and
AuthenticationMiddleware are async-capable, but run their hooks in a thread
(sync_to_async), and the demo's seven middleware cost about thirteen thread
hops per stream opened. These two read the session and the user through
Django's async APIs (SessionBase.aget(), auth.aget_user()): one hop for the
session row, one for the user, and only when the view asks for the user.

Streams never change the session, so nothing is saved and no cookie is set.
"""

from collections.abc import Awaitable, Callable
from functools import partial
from importlib import import_module

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth import aget_user
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# The next handler of the chain: the following middleware, or the view.
GetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class AsyncMiddleware:
    """Base of an async-only middleware: ``process(request)`` before the view."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: GetResponse):
        if not iscoroutinefunction(get_response):
            raise TypeError(f"{type(self).__name__} serves async requests only.")
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        self.process(request)
        return await self.get_response(request)

    def process(self, request: HttpRequest) -> None:
        raise NotImplementedError


class StreamSessionMiddleware(AsyncMiddleware):
    """Give the request its session, loaded on first (async) use; never save it."""

    def __init__(self, get_response: GetResponse):
        super().__init__(get_response)
        self.SessionStore = import_module(settings.SESSION_ENGINE).SessionStore

    def process(self, request: HttpRequest) -> None:
        request.session = self.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))


class StreamAuthenticationMiddleware(AsyncMiddleware):
    """Give the request ``auser()``, which reads the user through Django's async auth API."""

    def process(self, request: HttpRequest) -> None:
        request.auser = partial(_cached_user, request)


async def _cached_user(request):
    if not hasattr(request, "_acached_user"):
        request._acached_user = await aget_user(request)
    return request._acached_user
