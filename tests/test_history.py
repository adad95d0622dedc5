"""InMemoryHistory: ids, epochs and exactly-what-was-missed catch-up."""

import pytest
from django.conf import settings
from django.test import override_settings

from notifications.exceptions import InvalidEventId
from notifications.history import EventId, get_history
from notifications.history.database import DatabaseHistory
from notifications.history.memory import InMemoryHistory

from .support import stored_events


async def append_many(history, topic, count, event_type="alpha"):
    return [await history.append(topic, event_type, f'{{"n":{n}}}') for n in range(count)]


async def test_ids_are_epoch_dash_seq_with_seq_global_across_topics():
    history = InMemoryHistory(10)

    first = await history.append("alpha", "alpha", "1")
    second = await history.append("beta", "beta", "2")
    third = await history.append("user.7", "alpha", "3")

    assert [first.id, second.id, third.id] == [f"{history.epoch}-{n}" for n in (1, 2, 3)]
    assert (third.type, third.data) == ("alpha", "3")
    assert await history.head() == EventId(history.epoch, 3)


async def test_head_of_an_empty_history_has_seq_zero():
    history = InMemoryHistory(10)

    assert await history.head() == EventId(history.epoch, 0)


def test_every_history_has_its_own_epoch():
    assert InMemoryHistory(1).epoch != InMemoryHistory(1).epoch


async def test_events_after_merges_topics_oldest_first_and_skips_others():
    history = InMemoryHistory(10)
    start = await history.head()
    a1 = await history.append("alpha", "alpha", "a1")
    await history.append("gamma", "gamma", "g1")
    b1 = await history.append("beta", "beta", "b1")
    a2 = await history.append("alpha", "alpha", "a2")
    b2 = await history.append("beta", "beta", "b2")

    assert await stored_events(history, ["beta", "alpha"], start) == [a1, b1, a2, b2]
    assert await stored_events(history, ["alpha", "beta"], EventId.parse(b1.id)) == [a2, b2]
    assert await stored_events(history, ["alpha", "beta"], EventId.parse(b2.id)) == []


async def test_events_after_the_newest_is_empty_not_none():
    history = InMemoryHistory(10)
    await append_many(history, "alpha", 3)

    assert await stored_events(history, ["alpha"], await history.head()) == []


async def test_catch_up_past_evicted_events_is_none():
    history = InMemoryHistory(2)
    start = await history.head()
    first, second, third = await append_many(history, "alpha", 3)

    assert await stored_events(history, ["alpha"], start) is None
    # The client saw the evicted event itself: nothing it missed is gone.
    assert await stored_events(history, ["alpha"], EventId.parse(first.id)) == [second, third]


async def test_eviction_on_an_unrequested_topic_does_not_matter():
    history = InMemoryHistory(1)
    start = await history.head()
    await append_many(history, "beta", 3)
    alpha = await history.append("alpha", "alpha", "{}")

    assert await stored_events(history, ["alpha"], start) == [alpha]
    assert await stored_events(history, ["alpha", "beta"], start) is None


async def test_id_from_another_epoch_is_none():
    history = InMemoryHistory(10)
    await append_many(history, "alpha", 3)

    assert await stored_events(history, ["alpha"], EventId("0ther", 1)) is None


async def test_id_from_the_future_is_none():
    history = InMemoryHistory(10)
    await append_many(history, "alpha", 3)

    assert await stored_events(history, ["alpha"], EventId(history.epoch, 4)) is None


async def test_size_zero_keeps_nothing_but_still_assigns_ids():
    history = InMemoryHistory(0)
    start = await history.head()
    first, second = await append_many(history, "alpha", 2)

    assert (first.id, second.id) == (f"{history.epoch}-1", f"{history.epoch}-2")
    assert await stored_events(history, ["alpha"], start) is None
    assert await stored_events(history, ["alpha"], EventId.parse(second.id)) == []


def test_event_id_parses_its_own_text_and_orders_by_epoch_then_seq():
    event_id = EventId.parse("1a2b-19")

    assert event_id == EventId("1a2b", 19)
    assert str(event_id) == "1a2b-19"
    assert EventId("a", 2) < EventId("a", 10)


@pytest.mark.parametrize("garbage", ["", "abc", "a-", "-1", "a-1-2", "A-1", "a-x", "a- 1", "a-1\n", None])
def test_malformed_event_ids_are_refused_with_the_valid_form(garbage):
    with pytest.raises(InvalidEventId) as raised:
        EventId.parse(garbage)

    assert str(raised.value) == f"Event id {garbage!r} is not valid. Ids look like '<epoch>-<number>'."


def test_get_history_is_built_once_from_settings_and_rebuilt_when_they_change():
    history = get_history()

    assert isinstance(history, InMemoryHistory)
    assert history.size == 1000
    assert get_history() is history
    with override_settings(NOTIFICATIONS={**settings.NOTIFICATIONS, "HISTORY_SIZE": 3}):
        assert get_history() is not history
        assert get_history().size == 3


def test_the_in_memory_history_takes_no_options():
    # A typo in HISTORY_OPTIONS must not be silently dropped: check E007 reports the TypeError.
    with pytest.raises(TypeError, match="unexpected keyword argument 'url'"):
        InMemoryHistory(10, url="redis://127.0.0.1:6379/0")


def test_the_database_history_refuses_an_alias_not_in_databases():
    # Refused when built (check E007), not at the first publish with ConnectionDoesNotExist.
    with pytest.raises(
        ValueError,
        match=r"^DatabaseHistory option 'database' must be an alias in DATABASES, not 'nope'\. "
        r"Known aliases: 'default'\.$",
    ):
        DatabaseHistory(10, database="nope")
    assert DatabaseHistory(10, database="default").database == "default"
