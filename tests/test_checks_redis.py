"""System checks for a Redis deployment: history and layer shared alike, history options."""

from notifications.checks import W006, check_settings

REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS_HISTORY = "notifications.history.redis.RedisHistory"
DATABASE_HISTORY = "notifications.history.database.DatabaseHistory"


def history_errors(settings, layers, **options):
    settings.CHANNEL_LAYERS = layers
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, **options}
    return [error for error in check_settings() if error.id.startswith("notifications.")]


def test_a_shared_history_with_an_in_memory_layer_passes(settings):
    # Each hub polls a shared history, so no event stays unstreamed.
    assert history_errors(settings, MEMORY_LAYER, HISTORY_BACKEND=REDIS_HISTORY) == []
    assert history_errors(settings, MEMORY_LAYER, HISTORY_BACKEND=DATABASE_HISTORY) == []


def test_redis_layer_with_an_in_memory_history_is_a_misconfiguration(settings):
    assert history_errors(settings, REDIS_LAYER) == [W006]


def test_redis_layer_and_redis_history_pass(settings):
    options = {"url": "redis://127.0.0.1:6379/0", "max_connections": 4}
    assert history_errors(settings, REDIS_LAYER, HISTORY_BACKEND=REDIS_HISTORY, HISTORY_OPTIONS=options) == []


def test_in_memory_layer_and_history_pass(settings):
    assert history_errors(settings, MEMORY_LAYER) == []


def test_unknown_history_option_is_an_error_naming_it(settings):
    [error] = history_errors(
        settings, REDIS_LAYER, HISTORY_BACKEND=REDIS_HISTORY, HISTORY_OPTIONS={"uri": "x"}
    )
    assert error.id == "notifications.E007"
    assert error.msg.startswith(
        "NOTIFICATIONS['HISTORY_OPTIONS'] is not accepted by RedisHistory: TypeError:"
    )
    assert "'uri'" in error.msg


def test_invalid_history_option_value_is_an_error_quoting_it(settings):
    options = {"url": "http://cache:6379"}
    [error] = history_errors(settings, REDIS_LAYER, HISTORY_BACKEND=REDIS_HISTORY, HISTORY_OPTIONS=options)
    assert error.msg == (
        "NOTIFICATIONS['HISTORY_OPTIONS'] is not accepted by RedisHistory: ValueError: "
        "RedisHistory option 'url' must look like 'redis://host:port/db', not 'http://cache:6379'."
    )
