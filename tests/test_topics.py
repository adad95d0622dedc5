"""Topic names: event types (declared or registered) and private user topics."""

from types import SimpleNamespace

import pytest
from channels.layers import InMemoryChannelLayer

from notifications.exceptions import InvalidEventType
from notifications.topics import (
    check_registered,
    check_topic,
    group_name,
    is_valid_name,
    register,
    registered,
    topic_owner,
    unregister,
    user_topic,
)

from .support import notifications_settings


@pytest.fixture
def registering():
    """Register names for one test and forget them afterwards."""
    names = []

    def register_for_test(name):
        names.append(name)
        return register(name)

    yield register_for_test
    for name in names:
        unregister(name)


@pytest.mark.parametrize("name", ["a", "task_completed", "build.done", "x-y", "A1", "a" * 64, "...", "-_"])
def test_names_of_1_to_64_letters_digits_underscore_period_hyphen_are_valid(name):
    assert is_valid_name(name)


@pytest.mark.parametrize(
    "name", ["", "a" * 65, "has space", "slash/es", "colon:", "é", "new\nline", "nul\x00", "emoji🎉", None, 5]
)
def test_other_names_are_invalid(name):
    assert not is_valid_name(name)


def test_names_with_the_reserved_user_prefix_are_not_event_types():
    assert not is_valid_name("user.5")
    assert is_valid_name("users.5")
    assert is_valid_name("user-5")


@pytest.mark.parametrize(
    "refused, message",
    [
        (
            lambda: register("has space"),
            "Event type 'has space' is not valid. Use 1 to 64 ASCII letters, digits, "
            "hyphens, underscores or periods, not starting with 'user.'.",
        ),
        (
            lambda: check_registered("nope"),
            "Event type 'nope' is not registered. Add it to "
            "NOTIFICATIONS['EVENT_TYPES'] or call notifications.topics.register().",
        ),
    ],
    ids=["invalid", "unregistered"],
)
def test_errors_name_the_value_and_what_is_valid(refused, message):
    with pytest.raises(InvalidEventType) as raised:
        refused()

    assert str(raised.value) == message
    assert "has space" not in registered()


def test_register_refuses_the_reserved_user_prefix():
    with pytest.raises(InvalidEventType, match="not starting with 'user.'"):
        register("user.42")

    assert "user.42" not in registered()


def test_registered_type_is_accepted_until_unregistered(registering):
    with pytest.raises(InvalidEventType, match="is not registered"):
        check_registered("deploy.finished")

    assert registering("deploy.finished") == "deploy.finished"
    assert check_registered("deploy.finished") == "deploy.finished"
    assert "deploy.finished" in registered()

    unregister("deploy.finished")

    assert "deploy.finished" not in registered()
    with pytest.raises(InvalidEventType, match="is not registered"):
        check_registered("deploy.finished")


def test_unregister_leaves_types_declared_in_settings():
    unregister("announcement")

    assert check_registered("announcement") == "announcement"


def test_settings_declared_types_are_read_at_call_time():
    with notifications_settings(EVENT_TYPES=["only_this"]):
        assert "only_this" in registered()
        with pytest.raises(InvalidEventType):
            check_registered("announcement")

    assert "announcement" in registered()
    assert "only_this" not in registered()


def test_user_topic_of_a_user_or_a_primary_key():
    assert user_topic(SimpleNamespace(pk=42)) == "user.42"
    assert user_topic(42) == "user.42"
    assert user_topic("7f3a-b_c") == "user.7f3a-b_c"


@pytest.mark.parametrize("pk", ["a.b", "with space", "", "x" * 60, None])
def test_user_topic_refuses_keys_that_cannot_name_a_group(pk):
    with pytest.raises(InvalidEventType, match="cannot name a topic"):
        user_topic(pk)


def test_topic_owner_is_the_user_key_of_a_private_topic_only():
    assert topic_owner("user.42") == "42"
    assert topic_owner("announcement") is None
    assert topic_owner("users.42") is None
    assert topic_owner("user.") is None


def test_streams_may_subscribe_to_declared_types_and_user_topics():
    assert check_topic("announcement") == "announcement"
    assert check_topic("user.42") == "user.42"
    for name in ["nope", "user.", "user.a.b", "bad name"]:
        with pytest.raises(InvalidEventType):
            check_topic(name)


def test_group_names_are_valid_for_channel_layers_at_the_longest_topic():
    layer = InMemoryChannelLayer()

    for topic in ["a" * 64, user_topic("x" * 59)]:
        assert group_name(topic).startswith("notifications.")
        assert layer.require_valid_group_name(group_name(topic))
