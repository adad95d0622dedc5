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
from ..exceptions import BackendUnavailable, PayloadError, describe
from .base import EventHistory, EventId, Page, Record

DEFAULT_URL = "redis://127.0.0.1:6379/0"
# Most events append_many() stores in one call: it stores them with one
# script (all or nothing), and Redis serves no other client while a script
# runs. Measured on 2 busy cores with Redis 7.0: 10,000 events to 10,000
# users took 0.2-0.5 s of Redis time (to one topic, 0.03 s), so streams and
# the channel layer wait at most that long, and the reply comes well within
# ``timeout`` (5 s by default; a reply later than ``timeout`` is reported as
# a failure although the script goes on and stores the batch).
MAX_BATCH = 10_000

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
# Returns the epoch and the seq of the first event; the others follow it.
#
# All or nothing: Redis runs a script without interruption but does not roll
# it back, so a command failing halfway (a key of another type where a
# stream goes, an entry id already in a stream) would leave the events before
# it stored, and seqs used. Everything that could make a write fail is
# checked before the first event is written (only a new epoch may be started
# before), and the script refuses the whole batch with an error instead.
# (Memory is not a risk: Redis refuses a script over maxmemory only at its
# first write, never after it.)
_APPEND = (
    _EPOCH
    + """
for i, kind in ipairs({'hash', 'set', 'hash'}) do
    local found = redis.call('TYPE', KEYS[i])['ok']
    if found ~= 'none' and found ~= kind then
        return redis.error_reply('key ' .. KEYS[i] .. ' holds a ' .. found .. ', not a ' .. kind)
    end
end
local epoch = current_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
local size = tonumber(ARGV[3])
local first = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') + 1
-- Per stream, its topic and the seqs of its events, in order.
local streams, order = {}, {}
for i = 4, #KEYS do
    local stream = streams[KEYS[i]]
    if not stream then
        stream = {topic = ARGV[4 + (i - 4) * 3], seqs = {}, at = {}}
        streams[KEYS[i]] = stream
        order[#order + 1] = KEYS[i]
        -- pcall: a key of another type answers an error, returned as is.
        local top = redis.pcall('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
        if top['err'] then
            return redis.error_reply(KEYS[i] .. ': ' .. top['err'])
        end
        if size > 0 and top[1] and tonumber(string.match(top[1][1], '^(%d+)')) >= first then
            return redis.error_reply('stream ' .. KEYS[i] .. ' already holds ids from seq ' .. first)
        end
    end
    stream.seqs[#stream.seqs + 1] = first + i - 4
    stream.at[#stream.at + 1] = 4 + (i - 4) * 3
end
-- Checked: from here on no command can fail.
redis.call('HINCRBY', KEYS[1], 'seq', #KEYS - 3)
for _, key in ipairs(order) do
    local stream = streams[key]
    local added = #stream.seqs
    if size == 0 then
        redis.call('HSET', KEYS[3], stream.topic, string.format('%d', stream.seqs[added]))
    else
        -- Keep the newest size: of this batch's events, and of the stream's
        -- before it. Events of the batch beyond that are never written, but
        -- are recorded as evicted like any other.
        local skipped = math.max(0, added - size)
        local gone = nil
        if skipped > 0 then
            gone = string.format('%d', stream.seqs[skipped])
        end
        local length = redis.call('XLEN', key)
        local excess = length + added - skipped - size
        if excess > 0 and not gone then
            local old = redis.call('XRANGE', key, '-', '+', 'COUNT', excess)
            gone = string.match(old[#old][1], '^(%d+)')
        end
        if gone then
            redis.call('HSET', KEYS[3], stream.topic, gone)
        end
        redis.call('SADD', KEYS[2], stream.topic)
        for j = skipped + 1, added do
            local at = stream.at[j]
            local id = string.format('%d-0', stream.seqs[j])
            redis.call('XADD', key, id, 'type', ARGV[at + 1], 'data', ARGV[at + 2])
        end
        if excess > 0 then
            redis.call('XTRIM', key, 'MAXLEN', size)
        end
    end
end
return {epoch, first}
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
        # One script for the whole batch, so it is stored all or nothing: a
        # script per chunk could fail after earlier chunks were stored, and
        # the caller, told the publish failed, would retry and duplicate them.
        # Redis serves no other client while a script runs (streams, the
        # channel layer, other publishers wait), so a batch is bounded.
        if len(items) > MAX_BATCH:
            raise PayloadError(
                f"{len(items)} events in one call; RedisHistory stores at most {MAX_BATCH} at once. "
                "Publish them in several calls."
            )
        keys = [self._state, self._topics, self._evicted, *(self._stream(topic) for topic, _, _ in items)]
        arguments = [
            self.prefix,
            secrets.token_hex(4),
            self.size,
            *(value for item in items for value in item),
        ]
        epoch, first = await self._run(_APPEND, keys, arguments)
        return [
            Event(event_type, data, f"{epoch}-{seq}")
            for seq, (_, event_type, data) in enumerate(items, start=int(first))
        ]

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
