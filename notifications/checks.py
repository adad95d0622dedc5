"""
System checks for NOTIFICATIONS and the setup it relies on.

Ids: E0xx/W0xx for settings and setup, E1xx/W1xx for access, origins and
tokens (check_security), W2xx for the server adapters (check_servers).
"""

import math
import re
from collections.abc import Sequence

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from .access import AUTHENTICATED, PUBLIC, public_types
from .conf import DEFAULTS
from .cors import ANY_ORIGIN
from .exceptions import describe
from .history import EventHistory
from .topics import is_valid_name, registered


def _number(value) -> bool:
    # Infinity is no number of seconds: templates and timers turn it into an int.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive_number(value) -> bool:
    return _number(value) and value > 0


def _non_negative_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive_int(value) -> bool:
    return _non_negative_int(value) and value > 0


def _optional(test):
    return lambda value: value is None or test(value)


def _non_empty_str(value) -> bool:
    return isinstance(value, str) and value != ""


def _non_negative_number(value) -> bool:
    return _number(value) and value >= 0


# The largest value the C int of gc.set_threshold() and listen() takes.
C_INT_MAX = 2**31 - 1


def _positive_c_int(value) -> bool:
    return _positive_int(value) and value <= C_INT_MAX


# Option -> (test, what it must be).
RULES = {
    "HEARTBEAT": (_positive_number, "a positive number of seconds"),
    "RETRY_MS": (_positive_int, "a positive whole number of milliseconds"),
    "HISTORY_SIZE": (_positive_int, "a positive integer"),
    "STREAM_QUEUE_SIZE": (_positive_int, "a positive integer"),
    "STREAM_QUEUE_BYTES": (_positive_int, "a positive number of bytes"),
    "POLL_INTERVAL": (_positive_number, "a positive number of seconds"),
    "MAX_UNSENT_BYTES": (_positive_int, "a positive number of bytes"),
    "MAX_TYPES_PER_STREAM": (_positive_int, "a positive integer"),
    "MAX_PAYLOAD_BYTES": (_positive_int, "a positive integer"),
    "DRAIN_TIMEOUT": (_positive_number, "a positive number of seconds"),
    "HISTORY_OPTIONS": (lambda v: isinstance(v, dict), "a dict"),
    "ACCESS": (lambda v: isinstance(v, dict), "a dict of event type to rule"),
    "DEFAULT_ACCESS": (lambda v: isinstance(v, str) and v, "'public', 'authenticated' or a permission name"),
    "PUBLISH_TOKEN": (lambda v: v is None or (isinstance(v, str) and v), "None or a non-empty string"),
    "MAX_STREAMS": (_optional(_positive_int), "None or a positive integer"),
    "MAX_STREAMS_PER_USER": (_optional(_positive_int), "None or a positive integer"),
    "LIMIT_RETRY_MS": (_positive_int, "a positive whole number of milliseconds"),
    "MAX_STREAM_AGE": (_optional(_positive_number), "None or a positive number of seconds"),
    "PUBLISH_RATE": (_optional(_positive_number), "None or a positive number of events per second"),
    "PUBLISH_BURST": (_positive_int, "a positive integer"),
    "ALLOWED_ORIGINS": (lambda v: isinstance(v, list | tuple), "a list of origins"),
    "ALLOW_CREDENTIALS": (lambda v: isinstance(v, bool), "True or False"),
    "METRICS_ACCESS": (lambda v: v in (None, "staff", "token"), "None, 'staff' or 'token'"),
    "METRICS_TOKEN": (lambda v: v is None or (isinstance(v, str) and v), "None or a non-empty string"),
    "TASK_PROGRESS_INTERVAL": (_non_negative_number, "a non-negative number of seconds"),
    "EMBEDDED_TASK_WORKER": (lambda v: v is None or (isinstance(v, str) and v), "None or an alias in TASKS"),
    "HISTORY_BACKEND": (_non_empty_str, "a dotted path to an EventHistory class"),
    "CHANNEL_LAYER": (_non_empty_str, "an alias in CHANNEL_LAYERS"),
    "EAGER_WRITES": (lambda v: isinstance(v, bool), "True or False"),
    "LISTEN_BACKLOG": (_optional(_positive_c_int), f"None or a positive integer up to {C_INT_MAX}"),
    "GC_THRESHOLDS": (
        lambda v: v is None or (isinstance(v, tuple | list) and len(v) == 3 and all(map(_positive_c_int, v))),
        f"None or three positive integers up to {C_INT_MAX}, as gc.set_threshold() takes",
    ),
    "STREAM_MIDDLEWARE": (
        lambda v: v is None or (isinstance(v, list | tuple) and all(map(_non_empty_str, v))),
        "None or a list of dotted paths to async-capable middleware",
    ),
}

# An origin as browsers send it: scheme, host, optional port, no path.
_ORIGIN = re.compile(r"https?://[^/?#\s:]+(:[0-9]{1,5})?")
# A permission as user.has_perm() takes it.
_PERMISSION = re.compile(r"[A-Za-z0-9_]+\.[^\s]+")
# Shorter tokens, or tokens of few distinct characters, can be guessed.
MIN_TOKEN_LENGTH = 32
MIN_TOKEN_CHARACTERS = 8

E001 = Error(
    "The NOTIFICATIONS setting must be a dict.",
    id="notifications.E001",
)
W003 = Warning(
    "The 'daphne' app is not first in INSTALLED_APPS.",
    hint="Put 'daphne' first so that runserver serves ASGI and streams drain on stop.",
    id="notifications.W003",
)
W004 = Warning(
    "GZipMiddleware is enabled: it buffers event streams.",
    hint=(
        "Remove django.middleware.gzip.GZipMiddleware, or compress in the proxy "
        "and leave text/event-stream responses alone there."
    ),
    id="notifications.W004",
)
W001 = Warning(
    "The notifications channel layer and history are in-memory; events published in other processes "
    "never reach this one.",
    hint=(
        "Set NOTIFICATIONS['HISTORY_BACKEND'] to 'notifications.history.database.DatabaseHistory', or "
        "configure a channels_redis layer and RedisHistory, when more than one process publishes or "
        "serves streams."
    ),
    id="notifications.W001",
)
W006 = Warning(
    "The notifications channel layer is shared between processes but NOTIFICATIONS['HISTORY_BACKEND'] "
    "keeps history in each process; ids differ per process, so clients that reconnect to another "
    "process cannot catch up.",
    hint="Set NOTIFICATIONS['HISTORY_BACKEND'] to 'notifications.history.redis.RedisHistory'.",
    id="notifications.W006",
)
W002 = Warning(
    "NOTIFICATIONS['PUBLISH_TOKEN'] is shorter than 32 characters or has fewer than 8 distinct characters.",
    hint="Use a long random token, for example from secrets.token_urlsafe(32).",
    id="notifications.W002",
)


def check_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs) -> list[CheckMessage]:
    """Check every NOTIFICATIONS option and the apps streams depend on."""
    options = getattr(settings, "NOTIFICATIONS", {})
    if not isinstance(options, dict):
        return [E001]
    errors = []
    for name in sorted(set(options) - set(DEFAULTS)):
        errors.append(
            Error(
                f"NOTIFICATIONS[{name!r}] is not a known option.",
                hint="Known options: " + ", ".join(sorted(DEFAULTS)) + ".",
                id="notifications.E002",
            )
        )
    for name, (valid, expected) in RULES.items():
        if name in options and not valid(options[name]):
            errors.append(
                Error(
                    f"NOTIFICATIONS[{name!r}] must be {expected}, not {options[name]!r}.",
                    id="notifications.E003",
                )
            )
    event_types = options.get("EVENT_TYPES", [])
    if not isinstance(event_types, list | tuple) or not all(map(is_valid_name, event_types)):
        errors.append(
            Error(
                "NOTIFICATIONS['EVENT_TYPES'] must be a list of event type names.",
                hint=(
                    "Names are 1 to 64 ASCII letters, digits, hyphens, underscores or periods, "
                    "not starting with 'user.'."
                ),
                id="notifications.E004",
            )
        )
    history_class, error = _history_class(options.get("HISTORY_BACKEND", DEFAULTS["HISTORY_BACKEND"]))
    if error is not None:
        errors.append(error)
    errors += _check_history(history_class, options)
    errors += _check_default_client_types(options)
    errors += _check_stream_middleware(options)
    layer = options.get("CHANNEL_LAYER", DEFAULTS["CHANNEL_LAYER"])
    if _non_empty_str(layer) and layer not in getattr(settings, "CHANNEL_LAYERS", {}):
        errors.append(
            Error(
                f"NOTIFICATIONS['CHANNEL_LAYER'] {layer!r} is not in CHANNEL_LAYERS.",
                hint="Add it to CHANNEL_LAYERS, for example with channels.layers.InMemoryChannelLayer.",
                id="notifications.E006",
            )
        )
    if "daphne" in settings.INSTALLED_APPS and settings.INSTALLED_APPS[0] != "daphne":
        errors.append(W003)
    if "django.middleware.gzip.GZipMiddleware" in settings.MIDDLEWARE:
        errors.append(W004)
    return errors


def _history_class(backend: object) -> tuple[type | None, Error | None]:
    """Return the EventHistory class HISTORY_BACKEND names, or the E005 that says why there is none."""
    # A value of the wrong type is reported as E003; importing it would crash the check.
    if not _non_empty_str(backend):
        return None, None
    try:
        history_class = import_string(backend)
    except ImportError:
        problem = "cannot be imported"
    else:
        if isinstance(history_class, type) and issubclass(history_class, EventHistory):
            return history_class, None
        problem = "is not a subclass of notifications.history.EventHistory"
    return None, Error(f"NOTIFICATIONS['HISTORY_BACKEND'] {backend!r} {problem}.", id="notifications.E005")


def _check_stream_middleware(options: dict) -> list:
    """Check that every STREAM_MIDDLEWARE entry imports and is async-capable."""
    paths = options.get("STREAM_MIDDLEWARE")
    if not isinstance(paths, list | tuple):
        return []
    errors = []
    for path in filter(_non_empty_str, paths):
        try:
            middleware = import_string(path)
        except ImportError:
            problem = "cannot be imported"
        else:
            if getattr(middleware, "async_capable", False):
                continue
            problem = "is not async-capable"
        errors.append(
            Error(
                f"NOTIFICATIONS['STREAM_MIDDLEWARE'] names {path!r}, which {problem}.",
                hint="Stream requests run async-capable middleware only (async_capable = True).",
                id="notifications.E009",
            )
        )
    return errors


def _check_default_client_types(options: dict) -> list:
    """Check that the client tag's default stream (every public type) is within MAX_TYPES_PER_STREAM."""
    limit = options.get("MAX_TYPES_PER_STREAM", DEFAULTS["MAX_TYPES_PER_STREAM"])
    if not _positive_int(limit) or not isinstance(options.get("ACCESS", {}), dict):
        return []
    # The tag adds the user's private topic to the public types.
    wanted = len(public_types()) + 1
    if wanted <= limit:
        return []
    return [
        Error(
            f"The notifications_client tag's default stream needs {wanted} topics (every public event "
            f"type and the user's own), more than NOTIFICATIONS['MAX_TYPES_PER_STREAM'] ({limit}); "
            "such a stream is refused and the browser client stops.",
            hint="Raise NOTIFICATIONS['MAX_TYPES_PER_STREAM'], or pass types= to each notifications_client.",
            id="notifications.E008",
        )
    ]


def _check_history(history_class, options: dict) -> list:
    """Check the history's options and that history and layer are shared alike."""
    history_options = options.get("HISTORY_OPTIONS", {})
    if history_class is None or not isinstance(history_options, dict):
        return []
    try:
        history_class(options.get("HISTORY_SIZE", DEFAULTS["HISTORY_SIZE"]), **history_options)
    except (TypeError, ValueError) as exc:
        name = history_class.__name__
        return [
            Error(
                f"NOTIFICATIONS['HISTORY_OPTIONS'] is not accepted by {name}: {describe(exc)}.",
                id="notifications.E007",
            )
        ]
    layer_backend = _layer_backend(options)
    if not layer_backend:
        return []
    # A shared history with an in-memory layer is fine: each hub polls the
    # history, so events from other processes arrive within POLL_INTERVAL.
    layer_shared = not layer_backend.endswith("InMemoryChannelLayer")
    if layer_shared and not history_class.shared_between_processes:
        return [W006]
    return []


E101 = Error(
    "NOTIFICATIONS['ALLOWED_ORIGINS'] contains '*' while NOTIFICATIONS['ALLOW_CREDENTIALS'] is True.",
    hint="Browsers refuse credentials with '*': list the origins that may connect instead.",
    id="notifications.E101",
)
E103 = Error(
    "NOTIFICATIONS['METRICS_ACCESS'] is 'token' but NOTIFICATIONS['METRICS_TOKEN'] is not set.",
    hint="Set METRICS_TOKEN to a long random string, for example from secrets.token_urlsafe(32).",
    id="notifications.E103",
)
W101 = Warning(
    "NOTIFICATIONS['PUBLISH_TOKEN'] is not set: POST /sse/publish/<type>/ answers 404.",
    hint=(
        "Set it if services outside Django publish over HTTP; otherwise add "
        "'notifications.W101' to SILENCED_SYSTEM_CHECKS."
    ),
    id="notifications.W101",
)
W103 = Warning(
    "NOTIFICATIONS['METRICS_TOKEN'] is shorter than 32 characters or has fewer than 8 distinct characters.",
    hint="Use a long random token, for example from secrets.token_urlsafe(32).",
    id="notifications.W103",
)


def _is_weak(token: str) -> bool:
    return len(token) < MIN_TOKEN_LENGTH or len(set(token)) < MIN_TOKEN_CHARACTERS


def _valid_rule(rule: object) -> bool:
    return rule in (PUBLIC, AUTHENTICATED) or (
        isinstance(rule, str) and _PERMISSION.fullmatch(rule) is not None
    )


def _invalid_rule(option: str, rule: object) -> Error:
    return Error(
        f"NOTIFICATIONS{option} is {rule!r}, not a valid rule.",
        hint="Use 'public', 'authenticated' or a permission such as 'app_label.codename'.",
        id="notifications.E104",
    )


def check_security(app_configs: Sequence[AppConfig] | None = None, **kwargs) -> list[CheckMessage]:
    """Check access rules, origins and tokens; tokens only matter with DEBUG off."""
    options = getattr(settings, "NOTIFICATIONS", {})
    if not isinstance(options, dict):
        return []
    errors = []
    access = options.get("ACCESS", {})
    if isinstance(access, dict):
        known = registered()
        for event_type, rule in access.items():
            if event_type not in known:
                errors.append(
                    Warning(
                        f"NOTIFICATIONS['ACCESS'] has a rule for {event_type!r}, which is not an event type.",
                        hint="Add it to NOTIFICATIONS['EVENT_TYPES'] or register() it, or remove the rule.",
                        id="notifications.W102",
                    )
                )
            if not _valid_rule(rule):
                errors.append(_invalid_rule(f"['ACCESS'][{event_type!r}]", rule))
    default = options.get("DEFAULT_ACCESS", DEFAULTS["DEFAULT_ACCESS"])
    if not _valid_rule(default):
        errors.append(_invalid_rule("['DEFAULT_ACCESS']", default))
    origins = options.get("ALLOWED_ORIGINS", [])
    if isinstance(origins, list | tuple):
        for origin in origins:
            if origin != ANY_ORIGIN and not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
                errors.append(
                    Error(
                        f"NOTIFICATIONS['ALLOWED_ORIGINS'] contains {origin!r}, which is not an origin.",
                        hint="Write origins as 'https://host' or 'https://host:port', without a path.",
                        id="notifications.E102",
                    )
                )
        if ANY_ORIGIN in origins and options.get("ALLOW_CREDENTIALS") is True:
            errors.append(E101)
    metrics_token = options.get("METRICS_TOKEN")
    if options.get("METRICS_ACCESS") == "token" and not metrics_token:
        errors.append(E103)
    if not settings.DEBUG:
        token = options.get("PUBLISH_TOKEN")
        if not token:
            errors.append(W101)
        elif isinstance(token, str) and _is_weak(token):
            errors.append(W002)
        if isinstance(metrics_token, str) and metrics_token and _is_weak(metrics_token):
            errors.append(W103)
    return errors


def _history_is_shared(options: dict) -> bool:
    """Return whether the history backend is shared between processes (True if it is not usable)."""
    history_class, _ = _history_class(options.get("HISTORY_BACKEND", DEFAULTS["HISTORY_BACKEND"]))
    # An unusable backend is reported by check_settings (E003, E005).
    return history_class is None or history_class.shared_between_processes


def check_deployment(app_configs: Sequence[AppConfig] | None = None, **kwargs) -> list[CheckMessage]:
    """Warn about setups that work in development but not in production."""
    options = getattr(settings, "NOTIFICATIONS", {})
    if not isinstance(options, dict):
        return []
    warnings = []
    if _layer_is_in_memory(options) and not _history_is_shared(options):
        warnings.append(W001)
    return warnings


def _layer_backend(options: dict) -> str:
    """Return the BACKEND of the notifications channel layer, or "" if it is not configured."""
    alias = options.get("CHANNEL_LAYER", DEFAULTS["CHANNEL_LAYER"])
    if not _non_empty_str(alias):
        return ""  # Reported as E003.
    return getattr(settings, "CHANNEL_LAYERS", {}).get(alias, {}).get("BACKEND", "")


def _layer_is_in_memory(options: dict) -> bool:
    return _layer_backend(options).endswith("InMemoryChannelLayer")


def check_servers(app_configs: Sequence[AppConfig] | None = None, **kwargs) -> list[CheckMessage]:
    """Check that the server internals the clean stop relies on are there (notifications/servers/)."""
    from . import asgi
    from .servers import runserver

    adapters = [
        (_daphne_adapter(), "Daphne", "notifications.W201"),
        (runserver, "Django's autoreloader", "notifications.W202"),
        (asgi, "Django's ASGI handler", "notifications.W203"),
    ]
    messages = []
    for adapter, name, check_id in adapters:
        if adapter is None:
            continue
        missing, version = adapter.problems(), adapter.untested_version()
        if missing:
            lacks = ", ".join(missing)
            message = f"{name} lacks internals the clean stop relies on: {lacks}; {adapter.FALLBACK}."
        elif version:
            message = f"{name} {version} is not a version the clean stop was tested with."
        else:
            continue
        hint = f"{adapter.__name__} lists what it relies on; use a version it was tested with."
        messages.append(Warning(message, hint=hint, id=check_id))
    return messages


def _daphne_adapter():
    try:
        import daphne  # noqa: F401
    except ImportError:
        return None  # Served by another server: nothing of Daphne's is used.
    from .servers import daphne as adapter

    return adapter
