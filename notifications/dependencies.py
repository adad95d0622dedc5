"""
What this app depends on: the releases it is tested with, and the optional
libraries some settings need; a system check for each.

TESTED mirrors the dependency ranges of pyproject.toml, which the version
matrix (noxfile.py, ``make matrix``) runs the suite against. Outside them the
app may work, but server adapters and the ASGI handler lean on internals of
Daphne and Django (see lifecycle.py, asgi.py), so startup warns.
"""

import importlib.metadata
import re
from collections.abc import Sequence

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning

from . import tasks
from .conf import setting

# Distribution -> (lowest tested release, first release not tested).
TESTED: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "Django": ((5, 2), (6, 2)),
    "channels": ((4, 2), (4, 4)),
    "daphne": ((4, 1), (4, 3)),
}

E012 = Error(
    "NOTIFICATIONS['EMBEDDED_TASK_WORKER'] is set but this Django has no django.tasks "
    "(Django 6.0 and later).",
    hint="Upgrade Django, or set the option to None: task events are off on this Django.",
    id="notifications.E012",
)
E011 = Error(
    "NOTIFICATIONS['METRICS_ACCESS'] is set but prometheus-client is not installed.",
    hint="Install the 'metrics' extra: pip install 'django-sse-notifications[metrics]'.",
    id="notifications.E011",
)


def _release(version: str) -> tuple[int, int] | None:
    """Return the (major, minor) of a version string such as '6.1.3' or '6.2a1', or None."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def spell(release: tuple[int, int]) -> str:
    """Return a (major, minor) release as text, such as '6.2'."""
    return ".".join(map(str, release))


def installed_versions() -> dict[str, str]:
    """Return the installed version of each distribution in TESTED (missing ones left out)."""
    versions = {}
    for name in TESTED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def untested(versions: dict[str, str]) -> list[Warning]:
    """Return a warning for each of ``versions`` outside the tested range."""
    warnings = []
    for name, version in sorted(versions.items()):
        lowest, beyond = TESTED[name]
        release = _release(version)
        if release is None or not lowest <= release < beyond:
            warnings.append(
                Warning(
                    f"{name} {version} is outside the releases notifications is tested with "
                    f"(>={spell(lowest)},<{spell(beyond)}).",
                    hint="Install a tested release, or run the version matrix (make matrix) against it.",
                    id="notifications.W007",
                )
            )
    return warnings


def check_versions(app_configs: Sequence[AppConfig] | None = None, **kwargs) -> list[CheckMessage]:
    """Warn about installed Django, Channels or Daphne releases the app is not tested with."""
    return untested(installed_versions())


def check_optional_libraries(app_configs: Sequence[AppConfig] | None = None, **kwargs) -> list[CheckMessage]:
    """Check that settings which need an optional library find it installed."""
    try:
        access = setting("METRICS_ACCESS")
    except (TypeError, KeyError):
        return []  # A NOTIFICATIONS that is not a dict is reported as E001.
    if access is None:
        return []
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return [E011]
    return []


def check_tasks_available(app_configs: Sequence[AppConfig] | None = None, **kwargs) -> list[CheckMessage]:
    """Check that options of the tasks integration are not set where django.tasks is missing."""
    try:
        embedded = setting("EMBEDDED_TASK_WORKER")
    except (TypeError, KeyError):
        return []  # A NOTIFICATIONS that is not a dict is reported as E001.
    if embedded is not None and not tasks.available():
        return [E012]
    return []
