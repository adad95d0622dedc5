"""The wire protocol: ids, layer messages, and the JavaScript client's copy of the names."""

import re
from pathlib import Path

import pytest

from notifications import protocol
from notifications.exceptions import InvalidEventId
from notifications.protocol import EventId, announced_id, layer_message

STATIC = Path(protocol.__file__).parent / "static" / "notifications"


def javascript_constants() -> dict[str, str | list[str]]:
    """Return the string and string-list constants the browser client declares, by name."""
    source = "\n".join(path.read_text() for path in sorted(STATIC.glob("*.*js")))
    found: dict[str, str | list[str]] = {}
    for name, value in re.findall(r"const ([A-Z_]+) = (\"[^\"]*\"|\[[^\]]*\]);", source):
        found[name] = re.findall(r"\"([^\"]*)\"", value) if value.startswith("[") else value.strip('"')
    return found


def test_the_javascript_client_uses_the_servers_event_names():
    constants = javascript_constants()

    assert constants["KEEPALIVE"] == protocol.KEEPALIVE
    assert constants["STREAM_RESET"] == protocol.STREAM_RESET
    assert set(constants["CLOSING_EVENTS"]) == {
        protocol.SERVER_SHUTDOWN,
        protocol.STREAM_EXPIRED,
        protocol.LIMIT_EXCEEDED,
    }


def test_every_control_event_is_known_to_the_javascript_client():
    constants = javascript_constants()
    known = {constants["KEEPALIVE"], constants["STREAM_RESET"], *constants["CLOSING_EVENTS"]}

    assert known == set(protocol.CONTROL_EVENTS)


def test_a_layer_message_announces_an_id_and_nothing_else():
    message = layer_message("user.7", "ab12-42")

    assert message == {"type": protocol.LAYER_MESSAGE_TYPE, "topic": "user.7", "id": "ab12-42"}
    assert announced_id(message) == EventId("ab12", 42)


@pytest.mark.parametrize("message", [{}, {"id": None}, {"id": "42"}, {"id": "ab-12\n"}, {"id": ["ab-1"]}])
def test_a_layer_message_without_a_valid_id_is_refused(message):
    with pytest.raises(InvalidEventId):
        announced_id(message)


def test_ids_order_by_seq_within_an_epoch():
    assert EventId.parse("ab-9") < EventId.parse("ab-10")
    assert str(EventId.parse("ab-10")) == "ab-10"
