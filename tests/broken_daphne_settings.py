"""
Server settings that break one Daphne internal the clean stop relies on, as
a future Daphne might: the stop must fall back to Daphne's own behaviour.
"""

import daphne.server

from tests.server_settings import *  # noqa: F403

del daphne.server.twisted_loop
