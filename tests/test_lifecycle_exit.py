"""A stopped server leaves nothing for the interpreter's last garbage collection to walk."""

import gc

from daphne.server import Server

from notifications.servers.daphne import _stop


async def test_stopping_the_server_freezes_the_heap_so_the_process_exits_promptly():
    server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.connections = {}  # Server.run() sets it.
    gc.unfreeze()
    try:
        await _stop(server)

        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
