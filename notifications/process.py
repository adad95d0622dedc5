"""
State of this serving process: the event loop that serves streams and
whether the process is stopping.

Publishing reads it (to hand sync calls to the serving loop, and to refuse
events once a drain has begun), the hub and the lifecycle write it.
"""

import asyncio

serving_loop: asyncio.AbstractEventLoop | None = None
stopping = False
