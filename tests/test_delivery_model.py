"""
The delivery guarantee, checked by a model over the real code.

Several hubs stand for several processes: each has its own channel on one
shared in-memory channel layer (as processes share Redis), seen through a
wrapper that drops, repeats, delays and fails messages on demand, and all
share one history. Publishers call the real apublish(), some while the
layer's group_send fails; the layer's capacity is tiny, so bursts overflow
it. Clients read the real event_stream() and, like EventSource, reconnect
with the last id they received, to any process, after a slow-client close, a
drain, or whenever the model says so. The wrapper also fails or slows down
group_add and group_discard, and the model starts a process's group refresh
(the same as its rejoin after a failed receive) at any time, so it may race a
join or a leave.

After every step the model checks what a client may already rely on: the
events of its topics reach it in strictly increasing seq order, never twice,
and without a hole below the newest one it has; no id it gets is lower than
one it had. When the model settles (every hub read the history, every client
read its stream), every client has every event published to its topics, and
once every process refreshed its groups, each process is in the group of
exactly the topics its open streams listen to.

A ``stream_reset`` is due only to a client whose own topics had events
evicted that it had not received (more than HISTORY_SIZE newer ones of their
topic were published), and excuses only the events up to its id. In
DeliveryModel the history never evicts, so any ``stream_reset`` is a
failure; EvictingDeliveryModel keeps a few events per topic, so bursts
evict, and every client whose topics lost nothing must still get everything.
"""

import asyncio
import os
from dataclasses import dataclass, field

from channels.layers import InMemoryChannelLayer, channel_layers
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from notifications import apublish, process
from notifications.conf import setting
from notifications.encoding import encode_retry
from notifications.history import EventId, get_history, reset_history
from notifications.hub import Hub
from notifications.protocol import EVERY_HUB_GROUP
from notifications.streams import event_stream
from notifications.testing import parse_stream
from notifications.topics import group_name

from .support import notifications_settings

PROCESSES = 2
TOPICS = ["alpha", "beta"]
# Loop turns that let wake-ups, reads and streams run after a step.
TURNS = 30
# Loop turns a slow group_add or group_discard takes: more than a step's
# TURNS, so the next step runs while it is in flight.
SLOW_GROUP_CALL_TURNS = 2 * TURNS


class FlakySendLayer(InMemoryChannelLayer):
    """The shared layer; group_send fails while ``failing_sends`` is positive."""

    failing_sends = 0

    async def group_send(self, group, message):
        if FlakySendLayer.failing_sends:
            FlakySendLayer.failing_sends -= 1
            raise ConnectionError("injected group_send failure")
        await super().group_send(group, message)


class FaultyLayer:
    """One process's view of the shared layer, with faults on its receives and group calls."""

    def __init__(self, inner: InMemoryChannelLayer):
        self.inner = inner
        self.group_expiry = inner.group_expiry
        # Faults applied to the next messages received, in order.
        self.faults: list[str] = []
        self.held: list[dict] = []
        self.replay: list[dict] = []
        # Faults applied to the next group_add/group_discard calls, in order:
        # "fail" (Redis restarting) or "slow" (Redis taking its time).
        self.group_faults: list[str] = []
        # Every channel this process opened: a group still holding an old one
        # after the process stopped listening leaked.
        self.channels: list[str] = []

    async def new_channel(self, prefix="specific."):
        channel = await self.inner.new_channel(prefix)
        self.channels.append(channel)
        return channel

    async def group_add(self, group, channel):
        await self._group_fault()
        await self.inner.group_add(group, channel)

    async def group_discard(self, group, channel):
        await self._group_fault()
        await self.inner.group_discard(group, channel)

    async def _group_fault(self) -> None:
        fault = self.group_faults.pop(0) if self.group_faults else None
        if fault == "slow":
            for _ in range(SLOW_GROUP_CALL_TURNS):
                await asyncio.sleep(0)
        if fault == "fail":
            raise ConnectionError("injected group call failure")

    def groups(self) -> set[str]:
        """The groups that hold one of this process's channels."""
        return {group for group, members in self.inner.groups.items() if members.keys() & set(self.channels)}

    async def receive(self, channel):
        for _ in range(10_000):
            if self.replay:
                return self.replay.pop(0)
            message = await self.inner.receive(channel)
            fault = self.faults.pop(0) if self.faults else None
            if fault == "drop":
                continue
            if fault == "delay":
                self.held.append(message)
                continue
            if fault == "duplicate":
                self.replay.append(dict(message))
            if fault == "fail":
                raise ConnectionError("injected receive failure")
            return message
        raise AssertionError("receive looped without end")

    def release(self) -> None:
        """Deliver the delayed messages now: late, and after newer ones."""
        self.replay.extend(self.held)
        self.held.clear()


@dataclass
class Connection:
    process: int
    task: asyncio.Task
    body: bytes = b""
    paused: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ended(self) -> bool:
        return self.task.done()


@dataclass
class Client:
    topics: tuple[str, ...]
    # Seqs of the events received, over every connection, in order.
    seqs: list[int] = field(default_factory=list)
    # Where the first connection started: events after it are owed.
    start: int | None = None
    last_id: str | None = None
    connection: Connection | None = None
    # Each stream_reset: (seq of the last id the client had, seq it resumes from).
    resets: list[tuple[int, int]] = field(default_factory=list)
    # Seqs of every id received, events or not, in order.
    ids: list[int] = field(default_factory=list)


async def read_stream(stream, connection: Connection, client: Client) -> None:
    """Read the stream like EventSource, pausing while ``connection.paused`` is clear."""
    async for chunk in stream:
        connection.body += chunk
        for frame in parse_stream(chunk):
            if frame.id is None:
                continue
            seq = EventId.parse(frame.id).seq
            if frame.event == "stream_reset":
                client.resets.append((client.ids[-1] if client.ids else -1, seq))
            if client.start is None:
                client.start = seq
            if frame.event in TOPICS:
                client.seqs.append(seq)
            client.ids.append(seq)
            client.last_id = frame.id
        await connection.paused.wait()


class DeliveryModel(RuleBasedStateMachine):
    clients = Bundle("clients")
    # Events kept per topic: here more than are ever published.
    HISTORY_SIZE = 100_000

    def __init__(self):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.overrides = [
            override_settings(
                CHANNEL_LAYERS={
                    "default": {
                        "BACKEND": "tests.test_delivery_model.FlakySendLayer",
                        "CONFIG": {"capacity": 3},
                    }
                }
            ),
            notifications_settings(HISTORY_SIZE=self.HISTORY_SIZE, STREAM_QUEUE_SIZE=4, HEARTBEAT=3600),
        ]
        for override in self.overrides:
            override.enable()
        channel_layers.backends.clear()
        reset_history()
        process.stopping = False
        FlakySendLayer.failing_sends = 0
        self.shared = channel_layers["default"]
        self.layers = [FaultyLayer(self.shared) for _ in range(PROCESSES)]
        # A long poll: reads happen on wake-ups and on the model's "poll" rule.
        self.hubs = self.run(self._make_hubs())
        # Seq -> topic of every accepted publish.
        self.published: dict[int, str] = {}
        self.all_clients: list[Client] = []
        self.refreshes: list[asyncio.Task] = []

    async def _make_hubs(self) -> list[Hub]:
        return [Hub(layer=layer, history=get_history(), poll_interval=3600) for layer in self.layers]

    def run(self, coroutine):
        async def then_let_others_run():
            result = await coroutine
            for _ in range(TURNS):
                await asyncio.sleep(0)
            return result

        return self.loop.run_until_complete(then_let_others_run())

    def teardown(self):
        try:
            self.settle_and_check_everything_arrived()
        finally:
            self.run(self._close_all())
            self.loop.close()
            for override in reversed(self.overrides):
                override.disable()
            channel_layers.backends.clear()
            reset_history()

    async def _close_all(self) -> None:
        tasks = [c.connection.task for c in self.all_clients if c.connection]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for hub in self.hubs:
            await hub.close()
        for task in asyncio.all_tasks(self.loop) - {asyncio.current_task()}:
            task.cancel()

    # Publishing

    @rule(topic=st.sampled_from(TOPICS), count=st.integers(1, 8), failing_sends=st.integers(0, 2))
    def publish(self, topic, count, failing_sends):
        FlakySendLayer.failing_sends = failing_sends

        async def burst():
            # Without yielding in between: far beyond the layer's capacity.
            return [await apublish(topic, {"n": n}) for n in range(count)]

        for event_id in self.run(burst()):
            self.published[EventId.parse(event_id).seq] = topic
        FlakySendLayer.failing_sends = 0

    @rule(topics=st.lists(st.sampled_from(TOPICS), min_size=1, max_size=2, unique=True))
    def publish_concurrently(self, topics):
        async def concurrent():
            return await asyncio.gather(*(apublish(topic, {}) for topic in topics * 3))

        for topic, event_id in zip(topics * 3, self.run(concurrent()), strict=True):
            self.published[EventId.parse(event_id).seq] = topic

    # Clients

    @rule(
        target=clients,
        topics=st.lists(st.sampled_from(TOPICS), min_size=1, max_size=2, unique=True),
        process=st.integers(0, PROCESSES - 1),
    )
    def open_client(self, topics, process):
        client = Client(tuple(topics))
        self.all_clients.append(client)
        self.connect(client, process)
        return client

    def connect(self, client: Client, process: int) -> None:
        stream = event_stream(list(client.topics), client.last_id, hub=self.hubs[process])

        async def read_and_close(stream, connection: Connection) -> None:
            # Closed when the reading ends, cancelled while paused too, as the
            # server closes a response's body: its finally unregisters the listener.
            try:
                await read_stream(stream, connection, client)
            finally:
                await stream.aclose()

        async def start():
            connection = Connection(process, None)
            connection.paused.set()
            connection.task = asyncio.ensure_future(read_and_close(stream, connection))
            return connection

        client.connection = self.run(start())

    @rule(client=clients, process=st.integers(0, PROCESSES - 1))
    def reconnect(self, client, process):
        """Close the connection (if still open) and come back with the last id, maybe elsewhere."""
        task = client.connection.task
        task.cancel()
        self.run(asyncio.gather(task, return_exceptions=True))
        self.connect(client, process)

    @rule(client=clients)
    def pause(self, client):
        """The client stops reading: a burst then closes its stream as too slow."""
        client.connection.paused.clear()

    @rule(client=clients)
    def resume(self, client):
        client.connection.paused.set()
        self.run(asyncio.sleep(0))

    @rule(client=consumes(clients))
    def leave(self, client):
        task = client.connection.task
        task.cancel()
        self.run(asyncio.gather(task, return_exceptions=True))
        self.all_clients.remove(client)

    # Processes and the layer

    @rule(
        process=st.integers(0, PROCESSES - 1),
        fault=st.sampled_from(["drop", "delay", "duplicate", "fail"]),
        count=st.integers(1, 8),
    )
    def inject_faults(self, process, fault, count):
        """Apply ``fault`` to the next ``count`` messages this process receives."""
        self.layers[process].faults.extend([fault] * count)

    @rule(
        process=st.integers(0, PROCESSES - 1),
        fault=st.sampled_from(["fail", "slow"]),
        count=st.integers(1, 3),
    )
    def inject_group_faults(self, process, fault, count):
        """Apply ``fault`` to the next ``count`` group_add/group_discard calls of this process."""
        self.layers[process].group_faults.extend([fault] * count)

    @rule(process=st.integers(0, PROCESSES - 1))
    def refresh_groups(self, process):
        """
        The process joins its groups again, as every REFRESH_INTERVAL or after
        a failed receive, maybe while a join or leave is in flight: not awaited.
        """
        self.refreshes.append(self.loop.create_task(self.hubs[process].subscription._join_again()))
        self.run(asyncio.sleep(0))

    @rule(process=st.integers(0, PROCESSES - 1))
    def release_delayed_messages(self, process):
        self.layers[process].release()
        self.run(asyncio.sleep(0))

    @rule(process=st.integers(0, PROCESSES - 1))
    def poll(self, process):
        self.hubs[process].reader.request()
        self.run(asyncio.sleep(0))

    @rule(process=st.integers(0, PROCESSES - 1))
    def drain(self, process):
        """A stop: every stream there gets everything published, then a farewell."""
        hub = self.hubs[process]
        for client in self.all_clients:
            client.connection.paused.set()
        here = [
            c.connection
            for c in self.all_clients
            if c.connection.process == process and not c.connection.ended
        ]
        slow_before = hub.stats.slow_clients_closed
        slow = sum(1 for group in hub.listeners.values() for listener in group if listener.close_reason)
        self.run(hub.drain(1))
        assert all(connection.ended for connection in here)
        farewells = [connection for connection in here if b"event: server_shutdown\n" in connection.body]
        # The drain delivers what is pending first, which may overflow a
        # stream's (tiny, here) queue: such a stream ends as too slow.
        slow += hub.stats.slow_clients_closed - slow_before
        # A stream whose groups could not be joined (an injected group call
        # failure, maybe during the drain) ends at once with retry alone.
        retry_alone = encode_retry(setting("RETRY_MS"))
        unstarted = [connection for connection in here if connection.body == retry_alone]
        without_farewell = len(here) - len(farewells) - len(unstarted)
        assert without_farewell <= slow, "only streams closed as slow end without farewell"

    @rule(client=clients)
    def come_back_if_ended(self, client):
        """EventSource reconnects by itself when a response ends."""
        if client.connection.ended:
            self.connect(client, (client.connection.process + 1) % PROCESSES)

    # What holds after every step

    @invariant()
    def events_arrive_in_order_once_and_without_holes(self):
        for client in getattr(self, "all_clients", []):
            for had, resumes in client.resets:
                lost = self.evicted_after(client, had)
                assert lost, f"stream_reset to {resumes} from {had} on {client.topics}, which lost nothing"
            assert client.seqs == sorted(set(client.seqs)), f"out of order or repeated: {client.seqs}"
            assert client.ids == sorted(client.ids), f"an id went back: {client.ids}"
            if client.seqs:
                owed = self.owed(client, up_to=client.seqs[-1])
                missing = owed - set(client.seqs)
                assert not missing, f"holes {sorted(missing)} below {client.seqs[-1]} on {client.topics}"

    def owed(self, client: Client, up_to: int) -> set[int]:
        return {
            seq
            for seq, topic in self.published.items()
            if topic in client.topics
            and client.start is not None
            and client.start < seq <= up_to
            # A stream_reset excuses what it skipped.
            and not any(had < seq <= resumes for had, resumes in client.resets)
        }

    def evicted_after(self, client: Client, had: int) -> list[int]:
        """Events of ``client``'s topics after ``had`` with HISTORY_SIZE newer ones of their topic."""
        by_topic: dict[str, list[int]] = {}
        for seq, topic in sorted(self.published.items()):
            by_topic.setdefault(topic, []).append(seq)
        return [
            seq
            for topic in client.topics
            for seq in by_topic.get(topic, [])[: -self.HISTORY_SIZE]
            if seq > had
        ]

    def settle_and_check_everything_arrived(self):
        for layer in self.layers:
            layer.faults.clear()
            layer.group_faults.clear()
            layer.release()
        for client in self.all_clients:
            client.connection.paused.set()
        # A client closed as too slow by a burst comes back and may be closed
        # again by the next one: as many rounds as it takes, within reason.
        for _ in range(20):
            for hub in self.hubs:
                self.run(hub.reader.pump())
            ended = [client for client in self.all_clients if client.connection.ended]
            if not ended:
                break
            for client in ended:
                self.connect(client, client.connection.process)
        head = max(self.published, default=0)
        for client in self.all_clients:
            missing = self.owed(client, up_to=head) - set(client.seqs)
            assert not missing, f"{sorted(missing)} never reached a client of {client.topics}"
        self.events_arrive_in_order_once_and_without_holes()
        self.check_groups_after_a_refresh()

    def check_groups_after_a_refresh(self):
        """
        Once the refreshes in flight ended and each process refreshed its
        groups once more (the next REFRESH_INTERVAL), each is in the group of
        exactly the topics its open streams listen to: none missing (its
        streams would wait for the poll), none leaked.
        """

        async def refresh_every_hub() -> list:
            await asyncio.gather(*self.refreshes, return_exceptions=True)
            return [await hub.subscription._join_again() for hub in self.hubs]

        assert self.run(refresh_every_hub()) == [None] * PROCESSES
        for number, layer in enumerate(self.layers):
            topics = {
                topic
                for client in self.all_clients
                if client.connection.process == number and not client.connection.ended
                for topic in client.topics
            }
            expected = {group_name(topic) for topic in topics} | ({EVERY_HUB_GROUP} if topics else set())
            assert layer.groups() == expected, f"process {number}: streams on {sorted(topics)}"


DeliveryModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("DELIVERY_MODEL_EXAMPLES", 2000)),
    stateful_step_count=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class TestDelivery(DeliveryModel.TestCase):
    pass


class EvictingDeliveryModel(DeliveryModel):
    """The same model with a history that keeps only a few events per topic."""

    HISTORY_SIZE = 4


# Half as many: with evictions its examples are shorter-lived, and it finds a
# stream reset for another topic's burst within a few hundred.
EvictingDeliveryModel.TestCase.settings = settings(
    DeliveryModel.TestCase.settings,
    max_examples=max(1, int(os.environ.get("DELIVERY_MODEL_EXAMPLES", 2000)) // 2),
)


class TestDeliveryWithEvictions(EvictingDeliveryModel.TestCase):
    pass
