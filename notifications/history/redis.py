"""
History kept in Redis, shared by every process that serves or publishes.

Keys, under ``prefix`` (``notifications`` by default):

- ``<prefix>:state``, a hash: ``epoch`` (this lifetime of the history) and
  ``seq`` (the global sequence, incremented once per event on any topic);
- ``<prefix>:stream:<topic>``, a Stream per topic, capped at exactly
  ``size`` entries; entry ids are ``<seq>-0``, so Redis itself keeps each
  topic in id order;
- ``<prefix>:evicted``, a hash: per topic, the highest seq trimmed away, so
  read() knows when a reader asks for something that is gone;
- ``<prefix>:topics``, a set of the topics that have a stream.

Every operation is one Lua script, so an append (sequence, stream entry,
eviction record) is atomic and a read is a consistent snapshot. When the state
hash is missing (a new Redis, a flush, a restart without persistence) the next
script starts a new epoch and deletes the streams of the old one: old ids are
then foreign and clients that present them are reset.

The scripts touch keys they do not declare (the streams of an old epoch), so
the history needs a standalone Redis (or Sentinel), not Redis Cluster, like
channels_redis itself.
"""

import asyncio
import secrets
import types
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from ..encoding import Event
from ..exceptions import BackendUnavailable, describe
from .base import EventHistory, EventId, Page, Record

DEFAULT_URL = "redis://127.0.0.1:6379/0"
# Events stored by one script in append_many().
APPEND_CHUNK = 500

# Shared by every script: find the current epoch, or start a new one.
_EPOCH = """
local function current_epoch(state, topics, evicted, prefix, candidate)
    local epoch = redis.call('HGET', state, 'epoch')
    if epoch then
        return epoch
    end
    for _, topic in ipairs(redis.call('SMEMBERS', topics)) do
        redis.call('DEL', prefix .. ':stream:' .. topic)
    end
    redis.call('DEL', topics, evicted)
    redis.call('HSET', state, 'epoch', candidate)
    return candidate
end
"""

# KEYS: state, topics, evicted, then the stream of each event. ARGV: prefix,
# candidate epoch, size, then topic, event type and data of each event.
# Returns the epoch and the seq of each event.
_APPEND = (
    _EPOCH
    + """
local epoch = current_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
local size = tonumber(ARGV[3])
local seqs = {}
for i = 4, #KEYS do
    local stream = KEYS[i]
    local at = 4 + (i - 4) * 3
    local topic = ARGV[at]
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    seqs[#seqs + 1] = seq
    if size == 0 then
        redis.call('HSET', KEYS[3], topic, seq)
    else
        local excess = redis.call('XLEN', stream) - size + 1
        if excess > 0 then
            local gone = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)
            redis.call('HSET', KEYS[3], topic, string.match(gone[#gone][1], '^(%d+)'))
        end
        redis.call('SADD', KEYS[2], topic)
        local id = string.format('%d-0', seq)
        redis.call('XADD', stream, 'MAXLEN', size, id, 'type', ARGV[at + 1], 'data', ARGV[at + 2])
    end
end
return {epoch, seqs}
"""
)

# KEYS: state, topics, evicted. ARGV: prefix, candidate epoch.
_HEAD = (
    _EPOCH
    + """
local epoch = current_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
return {epoch, tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')}
"""
)

# KEYS: state, evicted, then one stream per topic. ARGV: epoch, last seq,
# limit, then the topics. Returns false when the events cannot all be
# returned, else the head seq and, per topic, at most limit entries after
# the last seq: one snapshot, so the answer is complete up to the head.
_READ = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
    return false
end
local last = tonumber(ARGV[2])
local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if last > head then
    return false
end
local found = {head}
for i = 3, #KEYS do
    local evicted = tonumber(redis.call('HGET', KEYS[2], ARGV[i + 1]) or '0')
    if evicted > last then
        return false
    end
    found[#found + 1] = redis.call('XRANGE', KEYS[i], '(' .. ARGV[2] .. '-0', '+', 'COUNT', ARGV[3])
end
return found
"""


def _redacted(url: str) -> str:
    """Return ``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class RedisHistory(EventHistory):
    """
    Keep the newest ``size`` events of each topic in Redis.

    Options (``NOTIFICATIONS['HISTORY_OPTIONS']``):

    - ``url``: the Redis server, ``redis://[:password@]host:port/db``;
    - ``prefix``: the start of every key, to share a Redis database;
    - ``max_connections``: connections per event loop; callers beyond it
      wait for a free one (at most ``timeout``) instead of failing;
    - ``timeout``: seconds to connect, to wait for a reply, and to wait for
      a free connection; beyond it the call raises BackendUnavailable.
    """

    shared_between_processes = True

    def __init__(
        self,
        size: int,
        *,
        url: str = DEFAULT_URL,
        prefix: str = "notifications",
        max_connections: int = 10,
        timeout: float = 5,
    ):
        super().__init__(size)
        _check_options(url, prefix, max_connections, timeout)
        self.url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self.timeout = timeout
        self._state = f"{prefix}:state"
        self._topics = f"{prefix}:topics"
        self._evicted = f"{prefix}:evicted"
        # Names the connections in CLIENT LIST, to tell them from the layer's.
        self._clients = LoopClients(url, max_connections, timeout, client_name=f"{prefix}-history")
        self._scripts: dict[str, AsyncScript] = {}

    async def append(self, topic: str, event_type: str, data: str) -> Event:
        [event] = await self.append_many([(topic, event_type, data)])
        return event

    async def append_many(self, items: list[tuple[str, str, str]]) -> list[Event]:
        events = []
        # One script per chunk: atomic, and short enough not to hold Redis up.
        for start in range(0, len(items), APPEND_CHUNK):
            chunk = items[start : start + APPEND_CHUNK]
            keys = [self._state, self._topics, self._evicted, *(self._stream(topic) for topic, _, _ in chunk)]
            arguments = [
                self.prefix,
                secrets.token_hex(4),
                self.size,
                *(value for item in chunk for value in item),
            ]
            epoch, seqs = await self._run(_APPEND, keys, arguments)
            events += [
                Event(event_type, data, f"{epoch}-{seq}")
                for (_, event_type, data), seq in zip(chunk, seqs, strict=True)
            ]
        return events

    async def head(self) -> EventId:
        keys = [self._state, self._topics, self._evicted]
        epoch, seq = await self._run(_HEAD, keys, [self.prefix, secrets.token_hex(4)])
        return EventId(epoch, int(seq))

    async def read(self, topics: list[str], after: EventId, limit: int) -> Page | None:
        keys = [self._state, self._evicted, *map(self._stream, topics)]
        found = await self._run(_READ, keys, [after.epoch, after.seq, limit, *topics])
        if found is None:
            return None
        head, per_topic = int(found[0]), found[1:]
        # A topic cut short by COUNT is complete only up to its last entry.
        through = min(
            [head] + [int(entries[-1][0].partition("-")[0]) for entries in per_topic if len(entries) == limit]
        )
        records = []
        for topic, entries in zip(topics, per_topic, strict=True):
            for entry_id, fields in entries:
                seq = int(entry_id.partition("-")[0])
                if seq <= through:
                    values = dict(zip(fields[::2], fields[1::2], strict=True))
                    event = Event(values["type"], values["data"], f"{after.epoch}-{seq}")
                    records.append(Record(seq, topic, event))
        records.sort(key=lambda record: record.seq)
        if len(records) > limit:
            del records[limit:]
            through = records[-1].seq
        return Page(records, EventId(after.epoch, through))

    async def close(self) -> None:
        """Close the client of the running event loop."""
        await self._clients.close()

    def _stream(self, topic: str) -> str:
        return f"{self.prefix}:stream:{topic}"

    async def _run(self, source: str, keys: list, arguments: list):
        client = self._clients.get()
        script = self._scripts.get(source)
        if script is None:
            # EVALSHA, and SCRIPT LOAD when Redis does not know the script
            # (first use, or a restarted Redis).
            script = self._scripts[source] = client.register_script(source)
        try:
            return await script(keys, arguments, client=client)
        except RedisError as exc:
            raise BackendUnavailable(
                f"The Redis history at {_redacted(self.url)!r} is unavailable: {describe(exc)}."
            ) from exc


def _check_options(url, prefix, max_connections, timeout) -> None:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"RedisHistory option 'url' must look like 'redis://host:port/db', not {url!r}.")
    if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
        raise ValueError(
            f"RedisHistory option 'prefix' must be a non-empty string without spaces, not {prefix!r}."
        )
    if not isinstance(max_connections, int) or isinstance(max_connections, bool) or max_connections < 1:
        raise ValueError(
            f"RedisHistory option 'max_connections' must be a positive integer, not {max_connections!r}."
        )
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(
            f"RedisHistory option 'timeout' must be a positive number of seconds, not {timeout!r}."
        )


class LoopClients:
    """
    A redis-py client per event loop (redis-py clients belong to one loop),
    each closed just before its loop closes.
    """

    def __init__(self, url: str, max_connections: int, timeout: float, client_name: str):
        self.url = url
        self.max_connections = max_connections
        self.timeout = timeout
        self.client_name = client_name
        self._clients: dict[asyncio.AbstractEventLoop, Redis] = {}

    def get(self) -> Redis:
        """Return the running event loop's client, made on first use."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            pool = BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.max_connections,
                timeout=self.timeout,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                decode_responses=True,
                client_name=self.client_name,
                # redis-py 8.1 over RESP3 hands out pooled connections that
                # Redis closed (a restart) without checking them, so the next
                # call fails; RESP2 keeps the check. See
                # https://github.com/redis/redis-py/pull/4260
                protocol=2,
                # Fail fast: an append is not idempotent, and a caller that
                # gets BackendUnavailable decides itself whether to retry.
                retry=Retry(NoBackoff(), 0),
            )
            client = self._clients[loop] = Redis(connection_pool=pool)
            self._close_with(loop)
        return client

    async def close(self) -> None:
        """Close the running event loop's client, if it has one."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose(close_connection_pool=True)

    def _close_with(self, loop: asyncio.AbstractEventLoop) -> None:
        # redis-py connections cannot be closed once their loop is closed,
        # and sync publish() runs each call in a new loop (async_to_sync):
        # close this loop's client just before the loop closes, as
        # channels_redis does for its own per-loop pools.
        close_loop = loop.close

        def close_client_then_loop(self_loop: asyncio.AbstractEventLoop) -> None:
            self_loop.close = close_loop
            if loop in self._clients and not loop.is_running():
                loop.run_until_complete(self.close())
            close_loop()

        loop.close = types.MethodType(close_client_then_loop, loop)
