"""Checks about what the app depends on: tested releases and optional libraries."""

import sys
import tomllib

from django.core.checks import Warning
from django.test import SimpleTestCase

from notifications import tasks
from notifications.dependencies import (
    E011,
    E012,
    TESTED,
    check_optional_libraries,
    check_tasks_available,
    check_versions,
    installed_versions,
    spell,
    untested,
)

from .conftest import ROOT
from .support import notifications_settings


class CheckVersionsTests(SimpleTestCase):
    def test_tested_ranges_are_the_package_dependencies(self):
        dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        self.assertEqual(
            set(dependencies),
            {f"{name}>={spell(lowest)},<{spell(beyond)}" for name, (lowest, beyond) in TESTED.items()},
        )

    def test_the_suite_runs_on_tested_releases(self):
        self.assertEqual(sorted(installed_versions()), sorted(TESTED))
        self.assertEqual(check_versions(None), [])

    def test_w201_names_each_release_outside_the_range(self):
        self.assertEqual(
            untested({"Django": "7.0", "channels": "4.3.2", "daphne": "4.0.0"}),
            [
                Warning(
                    "Django 7.0 is outside the releases notifications is tested with (>=5.2,<6.2).",
                    hint="Install a tested release, or run the version matrix (make matrix) against it.",
                    id="notifications.W007",
                ),
                Warning(
                    "daphne 4.0.0 is outside the releases notifications is tested with (>=4.1,<4.3).",
                    hint="Install a tested release, or run the version matrix (make matrix) against it.",
                    id="notifications.W007",
                ),
            ],
        )

    def test_prereleases_and_bounds(self):
        self.assertEqual(untested({"Django": "5.2", "channels": "4.3.99", "daphne": "4.2.0rc1"}), [])
        self.assertEqual([w.id for w in untested({"Django": "6.2a1"})], ["notifications.W007"])
        self.assertEqual([w.id for w in untested({"Django": "5.1.15"})], ["notifications.W007"])


class HiddenModule:
    """Make ``import name`` fail as if it were not installed, for the with block."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.saved = sys.modules.get(self.name)
        # None in sys.modules makes the import fail and find_spec() return None.
        sys.modules[self.name] = None

    def __exit__(self, *exc_info):
        if self.saved is None:
            del sys.modules[self.name]
        else:
            sys.modules[self.name] = self.saved


class CheckTasksAvailableTests(SimpleTestCase):
    def test_e202_embedded_worker_without_django_tasks(self):
        with HiddenModule("django.tasks"), notifications_settings(EMBEDDED_TASK_WORKER="default"):
            self.assertFalse(tasks.available())
            self.assertEqual(check_tasks_available(None), [E012])

    def test_no_embedded_worker_needs_no_django_tasks(self):
        with HiddenModule("django.tasks"), notifications_settings(EMBEDDED_TASK_WORKER=None):
            self.assertEqual(check_tasks_available(None), [])


class CheckOptionalLibrariesTests(SimpleTestCase):
    def test_metrics_off_needs_no_library(self):
        with notifications_settings(METRICS_ACCESS=None):
            self.assertEqual(check_optional_libraries(None), [])

    def test_e201_metrics_on_without_prometheus_client(self):
        with HiddenModule("prometheus_client"), notifications_settings(METRICS_ACCESS="staff"):
            self.assertEqual(check_optional_libraries(None), [E011])

    def test_metrics_on_with_prometheus_client(self):
        with notifications_settings(METRICS_ACCESS="staff"):
            self.assertEqual(check_optional_libraries(None), [])
