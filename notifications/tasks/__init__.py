"""
Events about Django task runs (``django.tasks``, Django 6.0 and later).

- events.py: what each event about a run carries and where it goes.
- receivers.py: receivers of the task signals that publish them.
- progress.py: ``report_progress()`` for tasks, as throttled events.
- worker.py: a django-tasks-db worker inside the server, for development.

Only available() is defined here, so that the app loads where
``django.tasks`` does not exist (Django 5.2): there the integration is off
and check E012 names the options that need it.
"""

import importlib.util


def available() -> bool:
    """Return whether this Django has django.tasks (6.0 and later)."""
    return importlib.util.find_spec("django.tasks") is not None
