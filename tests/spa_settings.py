"""Settings of the server the SPA browser test starts: the browser settings, one allowed origin, cookies."""

import os

from .browser_settings import *  # noqa: F403
from .browser_settings import NOTIFICATIONS

NOTIFICATIONS = {**NOTIFICATIONS, "ALLOWED_ORIGINS": [os.environ["SPA_ORIGIN"]], "ALLOW_CREDENTIALS": True}
