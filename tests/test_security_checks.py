"""System checks for access rules, origins, limits and tokens."""

from django.core.checks import Error, Warning
from django.test import override_settings

from notifications.checks import E101, E103, W002, W101, W103, check_security, check_settings

from .support import notifications_settings

STRONG = "Zq3-v9_Lw2xP8kR4mT6yB1nC5hJ7dF0sGa"


def security(**options):
    with notifications_settings(**options):
        return check_security(None)


def test_test_settings_pass():
    assert check_security(None) == []
    assert check_settings(None) == []


def test_star_with_credentials_is_an_error():
    assert security(ALLOWED_ORIGINS=["*"], ALLOW_CREDENTIALS=True) == [E101]
    assert security(ALLOWED_ORIGINS=["*"]) == []
    assert security(ALLOWED_ORIGINS=["https://app.example.com"], ALLOW_CREDENTIALS=True) == []


def test_origin_with_path_is_an_error():
    assert security(ALLOWED_ORIGINS=["https://app.example.com/"]) == [
        Error(
            "NOTIFICATIONS['ALLOWED_ORIGINS'] contains 'https://app.example.com/', which is not an origin.",
            hint="Write origins as 'https://host' or 'https://host:port', without a path.",
            id="notifications.E102",
        )
    ]
    assert security(ALLOWED_ORIGINS=["http://localhost:8000", "https://a.example"]) == []


def test_rule_for_unknown_event_type_is_a_warning():
    assert security(ACCESS={"annoucement": "public"}) == [
        Warning(
            "NOTIFICATIONS['ACCESS'] has a rule for 'annoucement', which is not an event type.",
            hint="Add it to NOTIFICATIONS['EVENT_TYPES'] or register() it, or remove the rule.",
            id="notifications.W102",
        )
    ]


def test_malformed_rules_are_errors():
    [error] = security(ACCESS={"alpha": "admins only"})
    assert error.id == "notifications.E104"
    assert error.msg == "NOTIFICATIONS['ACCESS']['alpha'] is 'admins only', not a valid rule."
    [error] = security(DEFAULT_ACCESS="everyone")
    assert error.msg == "NOTIFICATIONS['DEFAULT_ACCESS'] is 'everyone', not a valid rule."
    assert (
        security(ACCESS={"alpha": "auth.view_user", "beta": "authenticated"}, DEFAULT_ACCESS="public") == []
    )


def test_token_metrics_without_token_is_an_error():
    assert security(METRICS_ACCESS="token") == [E103]
    assert security(METRICS_ACCESS="token", METRICS_TOKEN=STRONG) == []


@override_settings(DEBUG=False)
def test_missing_or_weak_publish_token_warns_when_debug_is_off():
    assert security(PUBLISH_TOKEN=None) == [W101]
    assert security(PUBLISH_TOKEN="short") == [W002]
    assert security(PUBLISH_TOKEN="a" * 40) == [W002]
    assert security(PUBLISH_TOKEN=STRONG) == []


@override_settings(DEBUG=False)
def test_weak_metrics_token_warns_when_debug_is_off():
    assert security(PUBLISH_TOKEN=STRONG, METRICS_ACCESS="token", METRICS_TOKEN="x" * 40) == [W103]


@override_settings(DEBUG=True)
def test_tokens_are_not_checked_with_debug_on():
    assert security(PUBLISH_TOKEN=None) == []
    assert security(PUBLISH_TOKEN="short") == []


def test_limit_options_are_checked():
    with notifications_settings(
        MAX_STREAMS=0,
        MAX_STREAMS_PER_USER="10",
        MAX_STREAM_AGE=-1,
        PUBLISH_RATE=0,
        ALLOW_CREDENTIALS="yes",
        METRICS_ACCESS="public",
    ):
        messages = sorted(error.msg for error in check_settings(None))
    assert messages == [
        "NOTIFICATIONS['ALLOW_CREDENTIALS'] must be True or False, not 'yes'.",
        "NOTIFICATIONS['MAX_STREAMS'] must be None or a positive integer, not 0.",
        "NOTIFICATIONS['MAX_STREAMS_PER_USER'] must be None or a positive integer, not '10'.",
        "NOTIFICATIONS['MAX_STREAM_AGE'] must be None or a positive number of seconds, not -1.",
        "NOTIFICATIONS['METRICS_ACCESS'] must be None, 'staff' or 'token', not 'public'.",
        "NOTIFICATIONS['PUBLISH_RATE'] must be None or a positive number of events per second, not 0.",
    ]
    with notifications_settings(
        MAX_STREAMS=None, MAX_STREAMS_PER_USER=None, MAX_STREAM_AGE=None, PUBLISH_RATE=None
    ):
        assert check_settings(None) == []
