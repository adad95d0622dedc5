import asyncio
import threading
import time

from django.http import HttpResponse, StreamingHttpResponse


async def slow(request):
    """Answer after ?seconds=N: keeps a drain waiting on an ordinary request."""
    from .apps import _record

    _record({"slow_started": 1})
    await asyncio.sleep(float(request.GET.get("seconds", "1")))
    return HttpResponse("slow done\n")


async def stubborn_stream(request):
    """A hand-made stream that ignores shutdown, as a third-party view might."""

    async def forever():
        for _ in range(100_000):
            yield b": tick\n\n"
            await asyncio.sleep(0.1)

    return StreamingHttpResponse(forever(), content_type="text/event-stream")


async def endless_download(request):
    """
    A streaming CSV export of ?rows=N rows, 0.1 s apart, that ignores
    shutdown: after the drain timeout it must fail visibly.
    """

    async def rows():
        for n in range(int(request.GET.get("rows", "100000"))):
            yield f"{n},row\n".encode()
            await asyncio.sleep(0.1)

    return StreamingHttpResponse(rows(), content_type="text/csv")


def start_stuck_thread(request):
    """Start a non-daemon thread that outlives a stop: the interpreter would wait for it at exit."""
    threading.Thread(target=time.sleep, args=(600,), name="probe-stuck", daemon=False).start()
    return HttpResponse("started\n")
