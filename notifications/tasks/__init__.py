"""
Events about Django task runs (``django.tasks``, Django 6.0 and later).

- events.py: what each event about a run carries and where it goes.
- receivers.py: receivers of the task signals that publish them.
- progress.py: ``report_progress()`` for tasks, as throttled events.
- worker.py: a django-tasks-db worker inside the server, for development.

Nothing is imported here, so that the app loads where ``django.tasks`` does
not exist.
"""
