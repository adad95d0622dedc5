"""
Settings for the demo project.

The embedded defaults need no extra service: SQLite and the in-memory
channel layer. Environment variables switch to production pieces.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    # First, so that its runserver (ASGI) replaces Django's.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # Before notifications: receivers run in the order apps connect them, so
    # a run's TaskRun row is written before its event goes out, and a page
    # rendered after the event (the tab's position past it) shows the same.
    "project",
    "notifications",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH", BASE_DIR / "db.sqlite3"),
        # Write-ahead logging: readers (streams polling the history) never
        # wait for a writer (publish, the task worker), and a commit costs an
        # fsync only at checkpoints, not on every event: about 1 ms instead of
        # about 9 ms per publish here (python -m benchmarks.history). A power
        # cut may lose the last commits; a crash of the process loses none.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # A transaction takes the write lock when it begins, waiting for
            # it up to the busy timeout. In SQLite's default DEFERRED mode one
            # that reads before it writes (update_or_create) fails at once with
            # "database is locked" when another connection commits in between,
            # as the embedded task worker often does (Django's advice for
            # concurrent writers; check notifications.W012).
            "transaction_mode": "IMMEDIATE",
        },
    }
}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

NOTIFICATIONS = {
    "EVENT_TYPES": ["announcement", "task_started", "task_progress", "task_completed"],
    "PUBLISH_TOKEN": os.environ.get("NOTIFICATIONS_PUBLISH_TOKEN") or None,
    # The history lives in the database: `manage.py publish`, the shell and
    # `manage.py db_worker` processes append to it, the server's streams
    # read it (each process polls it), and a restart loses nothing.
    # NOTIFICATIONS_HISTORY_BACKEND picks another (the benchmark measures
    # notifications.history.memory.InMemoryHistory).
    "HISTORY_BACKEND": os.environ.get(
        "NOTIFICATIONS_HISTORY_BACKEND", "notifications.history.database.DatabaseHistory"
    ),
}
# Staff with this permission see every task run; a user always sees their own
# runs on their private topic.
NOTIFICATIONS["ACCESS"] = {
    event_type: "project.view_taskrun"
    for event_type in ("task_enqueued", "task_started", "task_progress", "task_completed")
}
# Tasks are queued in the database (django-tasks-db). By default a thread of
# the server runs them, so `manage.py runserver` alone runs the demo. With
# TASK_WORKER=separate, run `python manage.py db_worker` processes instead:
# their events reach the server through the database history.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
if os.environ.get("TASK_WORKER", "embedded") == "embedded":
    NOTIFICATIONS["EMBEDDED_TASK_WORKER"] = "default"
# Seconds the demo report task spends on each section.
DEMO_SECTION_SECONDS = float(os.environ.get("DEMO_SECTION_SECONDS", "0.5"))
if os.environ.get("NOTIFICATIONS_DRAIN_TIMEOUT"):
    NOTIFICATIONS["DRAIN_TIMEOUT"] = float(os.environ["NOTIFICATIONS_DRAIN_TIMEOUT"])

# Several Daphne processes and workers: REDIS_URL (redis://host:port/db) puts
# the channel layer and the history on Redis, shared by every process. See
# README, "Scaling out with Redis".
REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # RESP2: over RESP3, redis-py 8.1 reuses pooled connections a
                # Redis restart closed. socket_timeout stays above the
                # layer's 5 s blocking receive.
                "hosts": [
                    {"address": REDIS_URL, "protocol": 2, "socket_connect_timeout": 5, "socket_timeout": 10}
                ],
                # Each process re-adds itself at every resync (30 s), so a
                # process killed with -9 leaves its groups after 5 minutes.
                "group_expiry": 300,
                # Room for bursts between two receives of one process.
                "capacity": 1000,
            },
        }
    }
    NOTIFICATIONS["HISTORY_BACKEND"] = "notifications.history.redis.RedisHistory"
    NOTIFICATIONS["HISTORY_OPTIONS"] = {"url": REDIS_URL}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Everyone logs in here (the admin's login admits staff only); /tasks/ is
# where they follow their runs.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "task_runs"
LOGOUT_REDIRECT_URL = "home"
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The level in each line, so an ERROR is visible (and countable by clean_stop_check).
    "formatters": {"level": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "level"}},
    "loggers": {"notifications": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
