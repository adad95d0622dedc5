"""The SSE wire format: frames a browser's EventSource parses as intended."""

import pytest

from notifications.encoding import Event, encode_comment, encode_event, encode_position, encode_retry


def test_event_frame_has_id_event_and_data_then_blank_line():
    frame = encode_event(Event("announcement", '{"n":1}', "abc-1"))

    assert frame == b'id: abc-1\nevent: announcement\ndata: {"n":1}\n\n'


def test_event_without_id_has_no_id_field():
    assert encode_event(Event("announcement", "{}")) == b"event: announcement\ndata: {}\n\n"


@pytest.mark.parametrize("line_break", ["\n", "\r", "\r\n"])
def test_multi_line_data_becomes_one_data_field_per_line(line_break):
    frame = encode_event(Event("note", line_break.join(["first", "second", "third"])))

    assert frame == b"event: note\ndata: first\ndata: second\ndata: third\n\n"


def test_empty_data_is_one_empty_data_field():
    assert encode_event(Event("note", "")) == b"event: note\ndata: \n\n"


def test_unicode_data_is_utf8():
    frame = encode_event(Event("note", '"héllo → 世界 🎉"', "e-1"))

    assert frame.decode("utf-8") == 'id: e-1\nevent: note\ndata: "héllo → 世界 🎉"\n\n'


@pytest.mark.parametrize("bad", ["evil\ndata: injected", "evil\rid: 1", "evil\r\n", "evil\x00"])
def test_event_name_with_line_break_or_nul_is_refused(bad):
    with pytest.raises(ValueError, match="SSE field 'event' must not contain CR, LF or NUL"):
        encode_event(Event(bad, "{}"))


@pytest.mark.parametrize("bad", ["1\nevent: injected", "1\r", "1\r\ndata: x", "1\x002"])
def test_id_with_line_break_or_nul_is_refused(bad):
    with pytest.raises(ValueError, match="SSE field 'id' must not contain CR, LF or NUL"):
        encode_event(Event("note", "{}", bad))


def test_data_cannot_inject_fields_of_its_own():
    frame = encode_event(Event("note", "x\n\nevent: forged\nid: 99"))

    lines = frame.decode().split("\n")
    assert lines[:-2] == ["event: note", "data: x", "data: ", "data: event: forged", "data: id: 99"]
    assert frame.endswith(b"\n\n")


def test_retry_frame_sets_reconnection_delay_in_milliseconds():
    assert encode_retry(2000) == b"retry: 2000\n\n"


def test_comment_frame_starts_each_line_with_colon():
    assert encode_comment() == b":\n\n"
    assert encode_comment("keep-alive") == b":keep-alive\n\n"
    assert encode_comment("one\ntwo\r\nthree") == b":one\n:two\n:three\n\n"


def test_position_frame_is_an_id_without_data():
    assert encode_position("abc-7") == b"id: abc-7\n\n"
    with pytest.raises(ValueError, match="SSE field 'id' must not contain CR, LF or NUL"):
        encode_position("abc-7\ndata: injected")
