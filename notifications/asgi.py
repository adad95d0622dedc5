"""
The ASGI application for projects that serve event streams.

Django runs each request inside its own asgiref ThreadSensitiveContext, and
the first thread-sensitive sync call of a request (Django's own
request_started receivers are one) creates a thread that lives as long as
the request. For an event stream that is an OS thread per open connection.
Requests for stream views skip that per-request context: their few sync
calls at connect time share asgiref's single executor thread instead.
Every other request is served exactly as by Django.
"""

import django
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, get_resolver


class StreamingASGIHandler(ASGIHandler):
    """Django's ASGIHandler, without a thread per open event stream."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self._serves_event_stream(scope):
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

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


def get_asgi_application() -> StreamingASGIHandler:
    """
    Set up Django and return the ASGI application (like Django's own). Only
    serving processes build it, so the embedded task worker starts here
    when NOTIFICATIONS['EMBEDDED_TASK_WORKER'] asks for one.
    """
    django.setup(set_prefix=False)
    from .tasks import worker as task_worker

    task_worker.start()
    return StreamingASGIHandler()
