"""ASGI entry point: ``daphne project.asgi:application``."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from notifications.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
