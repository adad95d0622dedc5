"""
System checks for the tasks integration: where task events can go from
where tasks run, who may see them, and whether the embedded worker's SQLite
database takes concurrent writers. Registered only where django.tasks
exists (Django 6.0 and later).
"""

from collections.abc import Sequence

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.db import connections, router
from django.utils.module_loading import import_string

from ..checks import _history_is_shared
from ..conf import DEFAULTS
from .events import TASK_EVENT_TYPES


def _is_backend(path, *base_paths: str) -> bool:
    if not isinstance(path, str):
        return False
    try:
        backend = import_string(path)
        return any(issubclass(backend, import_string(base)) for base in base_paths)
    except (ImportError, TypeError):
        return False


# Task backends that run a task in the process that enqueues it, or never.
IN_PROCESS_TASK_BACKENDS = (
    "django.tasks.backends.immediate.ImmediateBackend",
    "django.tasks.backends.dummy.DummyBackend",
)
DATABASE_TASK_BACKEND = "django_tasks_db.DatabaseBackend"


def check_tasks(app_configs: Sequence[AppConfig] | None = None, **kwargs) -> list[CheckMessage]:
    """Check that task events can reach browsers from where tasks run, and who may see them."""
    options = getattr(settings, "NOTIFICATIONS", {})
    if not isinstance(options, dict):
        return []
    messages = []
    task_backends = getattr(settings, "TASKS", {})
    embedded = options.get("EMBEDDED_TASK_WORKER")
    if isinstance(embedded, str) and embedded:
        path = task_backends.get(embedded, {}).get("BACKEND")
        if not _is_backend(path, DATABASE_TASK_BACKEND):
            messages.append(
                Error(
                    f"NOTIFICATIONS['EMBEDDED_TASK_WORKER'] {embedded!r} is not a TASKS alias "
                    f"of a {DATABASE_TASK_BACKEND} backend.",
                    hint=(
                        f"Set TASKS[{embedded!r}]['BACKEND'] to {DATABASE_TASK_BACKEND!r} (with "
                        "'django_tasks_db' in INSTALLED_APPS), or set the option to None."
                    ),
                    id="notifications.E010",
                )
            )
        else:
            messages.extend(_check_worker_database())
    separate = sorted(
        alias
        for alias, config in task_backends.items()
        if alias != embedded
        and isinstance(config, dict)
        and isinstance(config.get("BACKEND"), str)
        and not _is_backend(config["BACKEND"], *IN_PROCESS_TASK_BACKENDS)
    )
    if separate and not _history_is_shared(options):
        messages.append(
            Warning(
                f"Tasks of TASKS {separate!r} run in separate worker processes, but the notifications "
                "history is kept in each process: their events never reach the server.",
                hint=(
                    "Set NOTIFICATIONS['HISTORY_BACKEND'] to "
                    "'notifications.history.database.DatabaseHistory' (or RedisHistory), or, in "
                    "development, run the tasks inside the server with "
                    "NOTIFICATIONS['EMBEDDED_TASK_WORKER']."
                ),
                id="notifications.W010",
            )
        )
    access = options.get("ACCESS", {})
    if isinstance(access, dict):
        default = options.get("DEFAULT_ACCESS", DEFAULTS["DEFAULT_ACCESS"])
        public = [t for t in TASK_EVENT_TYPES if access.get(t, default) == "public"]
        if public:
            messages.append(
                Warning(
                    f"Anyone may subscribe to the task events {public!r}: every task's status and "
                    "result is public.",
                    hint=(
                        "Give them a rule in NOTIFICATIONS['ACCESS'], such as "
                        "'app_label.view_model' or 'authenticated'."
                    ),
                    id="notifications.W011",
                )
            )
    return messages


def _check_worker_database() -> list[CheckMessage]:
    # The embedded worker writes (claims, results, progress) while requests
    # write, in one process. In SQLite's default DEFERRED mode a transaction
    # that reads before it writes (get_or_create, update_or_create) fails at
    # once with "database is locked" when another connection commits in
    # between: the busy timeout does not apply to it.
    if not apps.is_installed("django_tasks_db"):
        return []  # django-tasks-db's own check says so.
    from django_tasks_db.models import DBTaskResult

    alias = router.db_for_write(DBTaskResult)
    mode = connections[alias].settings_dict.get("OPTIONS", {}).get("transaction_mode")
    if connections[alias].vendor != "sqlite" or str(mode).upper() in ("IMMEDIATE", "EXCLUSIVE"):
        return []
    return [
        Warning(
            f"The embedded task worker writes to the SQLite database {alias!r} while requests do, "
            "and its transactions are DEFERRED: one that reads before it writes fails with "
            "'database is locked' when the worker commits in between.",
            hint=f"Set DATABASES[{alias!r}]['OPTIONS']['transaction_mode'] to 'IMMEDIATE'.",
            id="notifications.W012",
        )
    ]
