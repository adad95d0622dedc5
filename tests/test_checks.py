"""System checks: each misconfiguration is reported with its own id and message."""

from django.conf import settings
from django.core import checks
from django.core.checks import Error
from django.test import SimpleTestCase, override_settings

from notifications.checks import E001, RULES, W001, W003, W004, check_deployment, check_settings
from notifications.conf import DEFAULTS

from .support import notifications_settings

REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


def e003(name, expected, value):
    return Error(f"NOTIFICATIONS[{name!r}] must be {expected}, not {value!r}.", id="notifications.E003")


class CheckSettingsTests(SimpleTestCase):
    def test_test_settings_pass(self):
        self.assertEqual(check_settings(None), [])

    def test_missing_setting_uses_defaults_and_passes(self):
        with self.settings():
            del settings.NOTIFICATIONS
            self.assertEqual(check_settings(None), [])

    def test_e001_setting_is_not_a_dict(self):
        with override_settings(NOTIFICATIONS=[("HEARTBEAT", 15)]):
            self.assertEqual(check_settings(None), [E001])
            self.assertEqual(check_deployment(None), [])

    def test_e002_unknown_option_names_the_known_ones(self):
        with notifications_settings(HEARTBEET=10):
            self.assertEqual(
                check_settings(None),
                [
                    Error(
                        "NOTIFICATIONS['HEARTBEET'] is not a known option.",
                        hint="Known options: " + ", ".join(sorted(DEFAULTS)) + ".",
                        id="notifications.E002",
                    )
                ],
            )

    def test_e004_event_types_must_be_a_list_of_valid_names(self):
        e004 = Error(
            "NOTIFICATIONS['EVENT_TYPES'] must be a list of event type names.",
            hint=(
                "Names are 1 to 64 ASCII letters, digits, hyphens, underscores or periods, "
                "not starting with 'user.'."
            ),
            id="notifications.E004",
        )
        for bad in ["announcement", ["ok", "not ok"], ["user.7"], [""], [None]]:
            with self.subTest(event_types=bad), notifications_settings(EVENT_TYPES=bad):
                self.assertEqual(check_settings(None), [e004])
        with notifications_settings(EVENT_TYPES=("a", "b.c", "d-e_f")):
            self.assertEqual(check_settings(None), [])

    def test_e005_history_backend_cannot_be_imported(self):
        for missing in ["notifications.history.memory.NoSuchHistory", "no_such_module.History"]:
            with self.subTest(backend=missing), notifications_settings(HISTORY_BACKEND=missing):
                self.assertEqual(
                    check_settings(None),
                    [
                        Error(
                            f"NOTIFICATIONS['HISTORY_BACKEND'] {missing!r} cannot be imported.",
                            id="notifications.E005",
                        )
                    ],
                )

    def test_e005_history_backend_is_not_an_event_history(self):
        for wrong in ["django.http.HttpResponse", "notifications.conf.DEFAULTS"]:
            with self.subTest(backend=wrong), notifications_settings(HISTORY_BACKEND=wrong):
                self.assertEqual(
                    check_settings(None),
                    [
                        Error(
                            f"NOTIFICATIONS['HISTORY_BACKEND'] {wrong!r} is not a subclass of "
                            "notifications.history.EventHistory.",
                            id="notifications.E005",
                        )
                    ],
                )

    def test_e008_default_client_stream_over_max_types_per_stream(self):
        # The test settings declare three public types; the tag adds the user's topic.
        with notifications_settings(MAX_TYPES_PER_STREAM=3):
            [error] = check_settings(None)
        self.assertEqual(error.id, "notifications.E008")
        self.assertIn("needs 4 topics", error.msg)
        self.assertIn("NOTIFICATIONS['MAX_TYPES_PER_STREAM'] (3)", error.msg)
        with notifications_settings(MAX_TYPES_PER_STREAM=4):
            self.assertEqual(check_settings(None), [])

    def test_e006_channel_layer_alias_is_not_configured(self):
        with notifications_settings(CHANNEL_LAYER="events"):
            self.assertEqual(
                check_settings(None),
                [
                    Error(
                        "NOTIFICATIONS['CHANNEL_LAYER'] 'events' is not in CHANNEL_LAYERS.",
                        hint=(
                            "Add it to CHANNEL_LAYERS, for example with channels.layers.InMemoryChannelLayer."
                        ),
                        id="notifications.E006",
                    )
                ],
            )
        layers = {**settings.CHANNEL_LAYERS, "events": settings.CHANNEL_LAYERS["default"]}
        with notifications_settings(CHANNEL_LAYER="events"), override_settings(CHANNEL_LAYERS=layers):
            self.assertEqual(check_settings(None), [])

    def test_w003_daphne_installed_but_not_first(self):
        apps = [app for app in settings.INSTALLED_APPS if app != "daphne"]
        with override_settings(INSTALLED_APPS=[*apps, "daphne"]):
            self.assertEqual(check_settings(None), [W003])
        with override_settings(INSTALLED_APPS=apps):
            self.assertEqual(check_settings(None), [])

    def test_w004_gzip_middleware_buffers_streams(self):
        with override_settings(MIDDLEWARE=["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]):
            self.assertEqual(check_settings(None), [W004])

    def test_problems_are_reported_together(self):
        with notifications_settings(HEARTBEAT=0, EVENT_TYPES="x"):
            self.assertEqual(
                [error.id for error in check_settings(None)], ["notifications.E003", "notifications.E004"]
            )

    def test_checks_are_registered_under_the_notifications_tag(self):
        with override_settings(NOTIFICATIONS=None):
            self.assertEqual(checks.run_checks(tags=["notifications"]), [E001])
        self.assertEqual(checks.run_checks(tags=["notifications"], include_deployment_checks=True), [W001])


class OptionValueTests(SimpleTestCase):
    """E003: each option's value, one rule per option (notifications.checks.RULES)."""

    def assert_refused_and_accepted(self, bad_and_good: dict) -> None:
        """Check that each option's bad value is E003 and its good value passes."""
        for name, (bad, good) in bad_and_good.items():
            with self.subTest(name=name):
                with notifications_settings(**{name: bad}):
                    self.assertEqual(check_settings(None), [e003(name, RULES[name][1], bad)])
                with notifications_settings(**{name: good}):
                    self.assertEqual(check_settings(None), [])

    def test_e003_each_rule_refuses_a_bad_value_and_accepts_a_good_one(self):
        bad_and_good = {
            "HEARTBEAT": (0, 0.5),
            "RETRY_MS": (1.5, 500),
            "HISTORY_SIZE": (0, 1),
            "STREAM_QUEUE_SIZE": (0, 1),
            "STREAM_QUEUE_BYTES": (0.5, 1024),
            "POLL_INTERVAL": (0, 0.2),
            "MAX_UNSENT_BYTES": (0, 1),
            "MAX_TYPES_PER_STREAM": (True, 4),
            "MAX_PAYLOAD_BYTES": ("65536", 65536),
            "DRAIN_TIMEOUT": (-5, 2.5),
            "HISTORY_OPTIONS": (None, {}),
            "ACCESS": (["announcement"], {"announcement": "authenticated"}),
            "DEFAULT_ACCESS": ("", "auth.view_user"),
            "PUBLISH_TOKEN": ("", None),
            "HISTORY_BACKEND": (None, DEFAULTS["HISTORY_BACKEND"]),
            "CHANNEL_LAYER": (["default"], "default"),
            "EAGER_WRITES": ("yes", False),
            "LISTEN_BACKLOG": (0, None),
            "GC_THRESHOLDS": ((700, 0, 10), None),
            "STREAM_MIDDLEWARE": ("notifications.middleware.StreamSessionMiddleware", []),
            "MAX_STREAMS": (0, None),
            "MAX_STREAMS_PER_USER": ("10", 10),
            "LIMIT_RETRY_MS": (None, 1000),
            "MAX_STREAM_AGE": (-1, 0.5),
            "PUBLISH_RATE": (0, 2.5),
            "PUBLISH_BURST": (0.5, 1),
            "ALLOWED_ORIGINS": ("https://example.com", ["https://example.com"]),
            "ALLOW_CREDENTIALS": ("yes", True),
            "METRICS_ACCESS": ("public", "staff"),
            "METRICS_TOKEN": ("", None),
            "TASK_PROGRESS_INTERVAL": (-0.5, 0),
            "EMBEDDED_TASK_WORKER": ("", None),
        }
        self.assertEqual(set(bad_and_good), set(RULES))
        self.assert_refused_and_accepted(bad_and_good)

    def test_e003_numbers_are_finite_and_integers_fit_what_they_are_passed_to(self):
        # Each passes a test of type and sign, and broke later: infinity in the
        # client tag's int(HEARTBEAT * 1000), a huge integer in gc.set_threshold().
        infinity = float("inf")
        bad_and_good = {
            "HEARTBEAT": (infinity, 1e6),
            "POLL_INTERVAL": (infinity, 30),
            "DRAIN_TIMEOUT": (infinity, 3600),
            "MAX_STREAM_AGE": (infinity, 86400),
            "PUBLISH_RATE": (infinity, 1e9),
            "TASK_PROGRESS_INTERVAL": (infinity, 60),
            "LISTEN_BACKLOG": (2**31, 2**31 - 1),
            "GC_THRESHOLDS": ((2**31, 10, 10), (2**31 - 1, 10, 10)),
        }
        self.assert_refused_and_accepted(bad_and_good)


class CheckDeploymentTests(SimpleTestCase):
    def test_w001_in_memory_layer(self):
        self.assertEqual(check_deployment(None), [W001])

    def test_w001_not_raised_for_a_history_shared_between_processes(self):
        with notifications_settings(HISTORY_BACKEND="notifications.history.database.DatabaseHistory"):
            self.assertEqual(check_deployment(None), [])

    def test_w001_not_raised_for_a_redis_layer(self):
        with override_settings(CHANNEL_LAYERS=REDIS_LAYER):
            self.assertEqual(check_deployment(None), [])

    def test_deployment_check_survives_a_channel_layer_of_the_wrong_type(self):
        with notifications_settings(CHANNEL_LAYER=["default"]):
            self.assertEqual(check_deployment(None), [])

    def test_w001_follows_the_configured_alias(self):
        layers = {**REDIS_LAYER, "local": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        with override_settings(CHANNEL_LAYERS=layers):
            self.assertEqual(check_deployment(None), [])
            with notifications_settings(CHANNEL_LAYER="local"):
                self.assertEqual(check_deployment(None), [W001])
