from project.settings import *  # noqa: F403

NOTIFICATIONS = {
    "EVENT_TYPES": ["announcement", "task_started", "task_progress", "task_completed", "alpha", "beta"],
    "PUBLISH_TOKEN": "test-token-0123456789abcdef0123456789",
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
