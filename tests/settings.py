from project.settings import *  # noqa: F403

NOTIFICATIONS = {
    "EVENT_TYPES": ["announcement", "task_started", "task_progress", "task_completed", "alpha", "beta"],
    "PUBLISH_TOKEN": "test-token-0123456789abcdef0123456789",
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests that need Redis start their own; never the one REDIS_URL may name here.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
