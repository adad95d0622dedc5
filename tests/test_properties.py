"""
Property-based tests: whatever a client sends, the answer is a clear 4xx or a
well-formed stream, never a 500 and never a field the server did not mean to
send, and the server keeps serving afterwards.

About 10,700 generated cases in all (EXAMPLES), derandomized so CI runs the
same cases every time.
"""

import asyncio
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.encoding import Event, encode_comment, encode_event
from notifications.history import EventId, get_history
from notifications.hub import get_hub
from notifications.protocol import STREAM_RESET
from notifications.testing import parse_frame, parse_stream
from notifications.topics import registered

from .support import first_frame_sent, get, stored_events

# Requests end with Django's close_old_connections, which touches the database.
pytestmark = pytest.mark.django_db

EXAMPLES = {
    "encoder": 3000,
    "encoder_rejects": 1000,
    "comment": 500,
    "topic": 1300,
    "query": 1300,
    "last_event_id": 1300,
    "publish_body": 1300,
    "publish_type": 1000,
}
TOKEN = "test-token-0123456789abcdef0123456789"
CLEAR_ANSWERS = {400, 401, 403, 404, 405, 413}
# Every line of a stream is one of these fields, a comment, or blank.
STREAM_LINE = re.compile(
    rb"(retry: [0-9]+|id: [0-9a-z]{1,32}-[0-9]{1,19}|event: [A-Za-z0-9_.\-]+|data: .*|:.*|)"
)


def cases(name: str):
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


text = st.text(st.characters(exclude_categories=["Cs"]))
single_line = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"))
names = st.one_of(
    st.sampled_from(["announcement", "alpha", "beta", "task_completed", "user.1", "user.", "user..1"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/"), max_size=80),
    st.from_regex(r"[A-Za-z0-9_.\-]{1,70}", fullmatch=True),
)


@pytest.fixture
def run(settings):
    """Run coroutines in one event loop for every example; check the server still serves after."""
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "PUBLISH_RATE": None}
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    control = loop.run_until_complete(get("/sse/subscribe/announcement/"))
    assert control.status == 200 and first_frame_sent(control.body)
    assert loop.run_until_complete(_open_streams()) == 0
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


async def _open_streams() -> int:
    return get_hub().count


def assert_clear_answer_or_stream(response) -> None:
    if response.status != 200:
        assert response.status in CLEAR_ANSWERS, (response.status, response.body[:500])
        return
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert_well_formed_stream(response.body)


def assert_well_formed_stream(body: bytes) -> None:
    assert body.startswith(b"retry: "), body
    assert b"\r" not in body
    for line in body.split(b"\n"):
        assert STREAM_LINE.fullmatch(line), line


@cases("encoder")
@given(event_type=single_line, data=text, event_id=st.none() | single_line)
def test_encoded_event_parses_back_unchanged(event_type, data, event_id):
    frame = encode_event(Event(event_type, data, event_id))
    assert frame.endswith(b"\n\n") and b"\r" not in frame
    [parsed] = parse_stream(frame)
    assert parsed.event == event_type
    assert parsed.id == event_id
    assert parsed.data == "\n".join(re.split(r"\r\n|\r|\n", data))


@cases("encoder_rejects")
@given(
    before=single_line,
    breaker=st.sampled_from(["\r", "\n", "\r\n", "\x00"]),
    after=single_line,
    field=st.sampled_from(["type", "id"]),
)
def test_line_breaks_in_single_line_fields_are_refused(before, breaker, after, field):
    value = before + breaker + after
    event = Event(value, "{}") if field == "type" else Event("announcement", "{}", value)
    with pytest.raises(ValueError, match="must not contain CR, LF or NUL"):
        encode_event(event)


@cases("comment")
@given(text=text)
def test_comment_never_becomes_an_event(text):
    frame = encode_comment(text)
    assert frame.endswith(b"\n\n")
    for parsed in parse_stream(frame):
        assert (parsed.event, parsed.data, parsed.id, parsed.retry) == ("message", "", None, None)
    assert not parse_frame(frame.decode())[1]


@cases("topic")
@given(name=names)
def test_any_topic_in_the_path(run, name):
    response = run(get(f"/sse/subscribe/{name}/"))
    assert_clear_answer_or_stream(response)
    if response.status == 200:
        assert name in registered()


@cases("query")
@given(
    query=st.one_of(
        st.binary(max_size=200),
        st.lists(
            st.tuples(st.sampled_from(["types", "lastEventId", "x", "types[]"]) | text, text), max_size=5
        ).map(lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode()),
        st.lists(names, max_size=20).map(lambda types: ("types=" + ",".join(map(quote, types))).encode()),
    )
)
def test_any_query_string(run, query):
    assert_clear_answer_or_stream(run(get("/sse/subscribe/", query_string=query)))


@pytest.fixture
def history_ids(run):
    """Publish a few events so that replays have something to return."""
    history = get_history()
    ids = [run(history.append("announcement", "announcement", json.dumps({"n": n}))).id for n in range(5)]
    run(history.append("alpha", "alpha", "{}"))
    return ids


@cases("last_event_id")
@given(data=st.data())
def test_any_last_event_id(run, history_ids, data):
    epoch = EventId.parse(history_ids[0]).epoch
    value = data.draw(
        st.one_of(
            st.sampled_from(history_ids),
            st.integers(-5, 10**20).map(lambda seq: f"{epoch}-{seq}"),
            st.from_regex(r"[0-9a-z]{1,40}-[0-9]{1,25}", fullmatch=True),
            st.binary(max_size=100).map(
                lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"").decode("latin-1")
            ),
        )
    )
    in_query = data.draw(st.booleans())
    if in_query:
        response = run(
            get("/sse/subscribe/announcement/", query_string=b"lastEventId=" + quote(value).encode())
        )
    else:
        response = run(
            get("/sse/subscribe/announcement/", headers=[(b"last-event-id", value.encode("latin-1"))])
        )
    assert response.status == 200
    assert_well_formed_stream(response.body)
    frames = response.frames()
    assert frames[0].retry is not None
    if not value:
        # No id at all: the stream starts with its position, an id-only frame.
        assert [(frame.event, frame.data) for frame in frames[1:]] == [("message", "")]
    for frame in frames[1:]:
        # An empty id is no id (browsers never send one): the stream starts
        # with its position, an id-only frame that fires no event.
        assert frame.event in ("announcement", STREAM_RESET) or not value
        EventId.parse(frame.id)
    replayed = [frame.id for frame in frames if frame.event == "announcement"]
    if value in history_ids:
        assert replayed == history_ids[history_ids.index(value) + 1 :]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=20,
)


@cases("publish_body")
@given(
    body=st.one_of(
        st.binary(max_size=300),
        json_values.map(lambda value: json.dumps(value).encode()),
        json_values.map(lambda value: json.dumps(value, ensure_ascii=False).encode()),
        st.sampled_from([b"NaN", b"[Infinity]", b"-Infinity", b"[" * 5000 + b"]" * 5000, b"1" * 5000]),
    )
)
def test_any_publish_body(run, body):
    head = run(get_history().head())
    response = run(
        get(
            "/sse/publish/announcement/",
            method="POST",
            body=body,
            headers=[(b"authorization", f"Bearer {TOKEN}".encode())],
        )
    )
    assert response.status in {202, 400, 413}, (response.status, response.body[:300])
    if response.status != 202:
        return
    [event] = run(stored_events(get_history(), ["announcement"], head))
    assert json.loads(response.body) == {"id": event.id}
    assert json.loads(event.data) == json.loads(body)
    assert_well_formed_stream(b"retry: 1\n\n" + encode_event(event))


@cases("publish_type")
@given(
    name=names,
    authorization=st.sampled_from([f"Bearer {TOKEN}", "Bearer wrong", "Basic abc", "", "Bearer "]),
)
def test_any_publish_type_and_authorization(run, name, authorization):
    response = run(
        get(
            f"/sse/publish/{name}/",
            method="POST",
            body=b"{}",
            headers=[(b"authorization", authorization.encode())],
        )
    )
    assert response.status in {202} | CLEAR_ANSWERS, (response.status, response.body[:300])
    if response.status == 202:
        assert name in registered() and authorization == f"Bearer {TOKEN}"
