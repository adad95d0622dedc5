/*
 * Live notifications in the browser: one shared, resilient connection to
 * the notifications stream, as an ES module (no build step).
 *
 *     import { connect } from "https://api.example.com/sse/client.mjs";
 *     const notifications = connect({
 *       baseUrl: "https://api.example.com/sse/",  // where notifications.urls is mounted
 *       types: ["announcement", "task_completed"],
 *       withCredentials: true,                     // send the session cookie (ALLOW_CREDENTIALS)
 *     });
 *     notifications.on("announcement", ({ data }) => console.log(data.text));
 *
 * The server serves this file at <baseUrl>client.mjs with the CORS headers
 * of NOTIFICATIONS["ALLOWED_ORIGINS"], and as the static file
 * notifications/notifications.mjs. The template tag's script
 * (notifications.js) is a bootstrap over this module.
 *
 * connect(config) options:
 *   url             the subscribe URL ("/sse/subscribe/"), or
 *   baseUrl         the URL notifications.urls is mounted at ("/sse/")
 *   types           event types to receive, a list or "a,b" (default: none)
 *   topics          topics to subscribe to (default: types; the template tag
 *                   adds the user's private topic)
 *   withCredentials send cookies to another origin (default false)
 *   heartbeatMs     the server's HEARTBEAT in ms (default 15000): the
 *                   watchdog reconnects after 2.5 heartbeats of silence
 *   retryMs         the server's RETRY_MS (default 2000): the first delay
 *   onEvent, onReset, onState   callbacks, as on(), onReset(), onState()
 *   toasts, toastMs, indicator  show toasts and a connection indicator
 *                   (default off; the template tag turns them on)
 *   formatToast     (event) => text or null (no toast), or {text, title, kind,
 *                   href, key}: kind sets the toast's data-kind (style it in
 *                   CSS), href adds a link to the toast (all shown as text
 *                   only), and a toast whose key (default: the event's id)
 *                   is on screen already, carried from the page before or
 *                   not, is not shown again
 *   documentEvents  also dispatch CustomEvents on document (the bootstrap
 *                   does, see below)
 *
 * It returns the client:
 *
 *   on(type, callback)
 *       Call callback({type, data, id}) for each new event of `type` ("*":
 *       every type of this client). `data` is the parsed JSON payload.
 *       Return a function that unsubscribes.
 *   onReset(callback)
 *       Call callback({reason, id}) when events may have been missed (the
 *       server restarted, or its history no longer reaches back far enough):
 *       reload whatever state the page shows.
 *   onState(callback)
 *       Call callback(state, detail) when the connection state changes:
 *       "connecting", "live", "reconnecting", "failed" (the server refused
 *       the stream; detail is {status, reason}) or "closed".
 *   state, role ("leader" holds the connection, "follower" gets events from
 *       it), lastEventId
 *   formatToast = (event) => text or null (no toast)
 *   close()
 *
 * With documentEvents the same happenings are also dispatched on `document`
 * as CustomEvents "notifications:event", "notifications:reset" and
 * "notifications:state" (detail as above, state as detail.state), for
 * scripts that run before the client exists.
 *
 * Behaviour:
 * - The stream is an EventSource opened with ?keepalive=event, so the
 *   server's heartbeats are `keepalive` events the script can see
 *   (EventSource hides comments). A new stream's first keepalive also
 *   carries, as its lastEventId, the position the stream starts from.
 * - Watchdog: no event, not even a keepalive, for 2.5 heartbeats means the
 *   connection is dead though not closed: reconnect.
 * - The script, not the browser, reconnects: on every error it closes the
 *   EventSource and opens a new one with ?lastEventId=, after the server's
 *   `retry:` delay (RETRY_MS), doubling on each failure in a row (at most
 *   30 s), with random jitter. `server_shutdown`, `stream_expired` and
 *   `limit_exceeded`: reconnect after their `reconnect_after_ms`, quietly.
 * - EventSource does not say why it gave up (any status but 200, or
 *   another content type), so the script asks once with fetch(): a 4xx
 *   answer stops retrying ("failed", with the server's reason) until the
 *   set of subscribed types changes; anything else is retried.
 * - Each tab remembers the id of the last event it showed in
 *   sessionStorage, so the next page in the tab resumes from there:
 *   navigation loses nothing and shows nothing twice. The toasts still on
 *   screen when a page goes are shown again on the next one (an event that
 *   arrived while the page was being replaced was shown, just before it went).
 * - One connection per browser: the tabs of an origin that use the same
 *   stream URL elect a leader that holds the connection for the union of
 *   their types and relays every frame over a BroadcastChannel. The
 *   election uses the Web Locks API, which browsers offer only in secure
 *   contexts (https, localhost, 127.0.0.1); elsewhere the tabs elect by
 *   messages on the channel. A tab
 *   that arrives behind the shared connection (it was navigating while
 *   events came) makes the leader resume from the tab's position: tabs
 *   drop events they have already shown, so the others see nothing twice.
 * - On pagehide the tab closes its connection (or leaves the group), so
 *   the next leader takes over at once; a page restored from the
 *   back/forward cache starts over where it was.
 */
const WATCHDOG_HEARTBEATS = 2.5;
const MAX_BACKOFF_MS = 30000;
// A follower asks again if no leader answered its hello in this time.
const HELLO_RETRY_MS = 1000;
// Election without Web Locks: a leader says it is alive this often; a tab
// that heard nothing from one for max(LEADER_TIMEOUT_MS, the watchdog)
// claims the lead, and becomes leader if nobody objects within CLAIM_MS.
const ALIVE_MS = 1000;
const LEADER_TIMEOUT_MS = 3000;
const FIRST_CLAIM_MS = 500;
const CLAIM_MS = 250;
const MAX_TOASTS = 5;
// A toast with less time than this left is not shown again on the next page.
const MIN_CARRIED_TOAST_MS = 1000;
// Events of the server's own (notifications/streams.py).
const KEEPALIVE = "keepalive";
const STREAM_RESET = "stream_reset";
// A stream the server ends on purpose says when to come back
// (reconnect_after_ms): it stops, the stream is too old, a limit is reached.
const CLOSING_EVENTS = ["server_shutdown", "stream_expired", "limit_exceeded"];
const STATE_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  failed: "Notifications unavailable",
  closed: "Closed",
};

// Event ids are "<epoch>-<seq>": seq orders events within one history
// lifetime (epoch); ids of different epochs cannot be compared.
function parseId(id) {
  const dash = id.lastIndexOf("-");
  return { epoch: id.slice(0, dash), seq: Number(id.slice(dash + 1)) };
}

function sameEpoch(a, b) {
  return parseId(a).epoch === parseId(b).epoch;
}

function isAfter(id, position) {
  const event = parseId(id);
  const known = parseId(position);
  return event.epoch === known.epoch && event.seq > known.seq;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

function withJitter(milliseconds) {
  return milliseconds * (0.5 + Math.random() / 2);
}

function randomId() {
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

/*
 * One EventSource at a time, reopened until stopped.
 * handlers: frame({type, data, id}), state(state, detail), activity().
 * A frame with data null only moves the position.
 *
 * The script closes the EventSource on every error and opens the next one
 * itself, resuming with ?lastEventId= (a new EventSource cannot set the
 * Last-Event-ID header). The browser's own reconnection waits a fixed
 * `retry:` with no backoff and no jitter, so every page of a restarted
 * server would come back in step, and a server that is down would be
 * asked again every `retry:` for ever.
 */
class Connection {
  constructor(config, handlers) {
    this.url = config.url;
    this.withCredentials = config.withCredentials;
    this.heartbeatMs = config.heartbeatMs;
    this.retryMs = config.retryMs;
    this.handlers = handlers;
    this.generation = 0;
    this.lastEventId = null;
    this.topics = [];
    this.types = [];
    this.failures = 0;
  }

  start(topics, types, lastEventId) {
    this.stop();
    this.topics = topics;
    this.types = types;
    this.lastEventId = lastEventId;
    this.failures = 0;
    this.open(this.generation);
  }

  stop() {
    this.generation += 1;
    this.end();
    clearTimeout(this.reopenTimer);
  }

  end() {
    this.source?.close();
    this.source = null;
    clearInterval(this.watchdog);
    this.probe?.abort();
  }

  streamUrl() {
    const url = new URL(this.url, location.href);
    url.searchParams.set("types", this.topics.join(","));
    // Heartbeats as events: EventSource hides comments from the page.
    url.searchParams.set("keepalive", "event");
    if (this.lastEventId) url.searchParams.set("lastEventId", this.lastEventId);
    return url;
  }

  open(generation) {
    const source = new EventSource(this.streamUrl(), { withCredentials: this.withCredentials });
    this.source = source;
    let lastActivity = Date.now();
    let opened = false;
    const current = () => generation === this.generation && source === this.source;
    // Live from the first event (a new stream opens with a keepalive), not
    // from "open": a stream that only says goodbye never was.
    const alive = () => {
      lastActivity = Date.now();
      if (!opened) {
        opened = true;
        this.handlers.state("live");
      }
      this.handlers.activity();
    };
    this.watchdog = setInterval(
      () => {
        if (Date.now() - lastActivity <= this.heartbeatMs * WATCHDOG_HEARTBEATS) return;
        this.end();
        this.reconnect(generation, opened);
      },
      Math.max(this.heartbeatMs / 4, 250),
    );
    source.addEventListener(KEEPALIVE, (event) => {
      if (!current()) return;
      alive();
      // The id of the last frame before it: the id-only frame a new stream
      // opens with (which fires no event), or an event of a type this page
      // does not listen for.
      const position = event.lastEventId;
      if (position && position !== this.lastEventId) {
        this.lastEventId = position;
        this.handlers.frame({ type: KEEPALIVE, data: null, id: position });
      }
    });
    // Every event the server publishes has an id of its own; lastEventId
    // is the id of the last frame that had one.
    const deliver = (event) => {
      if (!current()) return;
      alive();
      const id = event.lastEventId || undefined;
      if (id !== undefined) this.lastEventId = id;
      this.handlers.frame({ type: event.type, data: event.data, id });
    };
    for (const type of new Set([...this.types, STREAM_RESET])) source.addEventListener(type, deliver);
    for (const type of CLOSING_EVENTS) {
      source.addEventListener(type, (event) => {
        if (!current()) return;
        this.end();
        this.failures = 0;
        const delay = parseJson(event.data).reconnect_after_ms ?? this.retryMs;
        this.handlers.state("reconnecting");
        this.reopen(generation, delay * (1 + Math.random() / 2));
      });
    }
    source.addEventListener("error", () => {
      if (!current()) return;
      // CLOSED: the browser gave up on a status or content type it will
      // not stream; CONNECTING: a network error or the response ended.
      const fatal = source.readyState === EventSource.CLOSED;
      this.end();
      if (fatal) this.ask(generation);
      else this.reconnect(generation, opened);
    });
  }

  // After an error: the `retry:` delay, doubled for each failure in a row.
  reconnect(generation, opened) {
    if (opened) this.failures = 0;
    const delay = withJitter(Math.min(MAX_BACKOFF_MS, this.retryMs * 2 ** this.failures));
    this.failures += 1;
    this.handlers.state("reconnecting");
    this.reopen(generation, delay);
  }

  reopen(generation, delay) {
    clearTimeout(this.reopenTimer);
    this.reopenTimer = setTimeout(() => {
      if (generation === this.generation) this.open(generation);
    }, delay);
  }

  /*
   * EventSource tells neither the status nor the reason of a refusal, so
   * ask once with fetch: a 4xx (but 408 or 429) stops retrying with the
   * server's reason; anything else is retried with backoff.
   */
  async ask(generation) {
    const probe = new AbortController();
    this.probe = probe;
    const timer = setTimeout(() => probe.abort(), this.heartbeatMs * WATCHDOG_HEARTBEATS);
    let refusal = null;
    try {
      const response = await fetch(this.streamUrl(), {
        headers: { Accept: "text/event-stream" },
        signal: probe.signal,
        cache: "no-store",
        credentials: this.withCredentials ? "include" : "same-origin",
      });
      const { status } = response;
      if (status >= 400 && status < 500 && ![408, 429].includes(status)) {
        refusal = { status, reason: (await response.text()).trim() || response.statusText };
      }
    } catch {
      // No answer: like a network error.
    } finally {
      clearTimeout(timer);
      // A stream this request opened is not read; the next attempt reads one.
      probe.abort();
    }
    if (generation !== this.generation) return;
    if (refusal) this.handlers.state("failed", refusal);
    else this.reconnect(generation, false);
  }
}

/* The tab that holds the connection, for itself and for its followers. */
class Leader {
  constructor(tab) {
    this.tab = tab;
    // What each tab wants: topics to subscribe to, event types it shows.
    this.wants = new Map([[tab.id, { topics: tab.config.topics, types: tab.config.types }]]);
    // Followers without a position, welcomed once the stream has one.
    this.waiting = new Map();
    this.connection = new Connection(tab.config, {
      frame: (frame) => this.frame(frame),
      state: (state, detail) => this.state(state, detail),
      activity: () => tab.election.beat(),
    });
    this.restart(tab.cursor);
  }

  union() {
    const wants = [...this.wants.values()];
    const all = (key) => [...new Set(wants.flatMap((want) => want[key]))].sort();
    return { topics: all("topics"), types: all("types") };
  }

  unionChangedBy(change) {
    const before = JSON.stringify(this.union());
    change();
    return JSON.stringify(this.union()) !== before;
  }

  restart(lastEventId) {
    if (this.tab.state === "failed") this.state("connecting");
    const { topics, types } = this.union();
    this.connection.start(topics, types, lastEventId);
  }

  hello({ from, cursor, topics, types, seq }) {
    const changed = this.unionChangedBy(() => this.wants.set(from, { topics, types }));
    const position = this.connection.lastEventId;
    const welcome = { kind: "welcome", to: from, seq };
    let resumeFrom;
    if (cursor === null) {
      if (position === null) {
        this.waiting.set(from, seq);
        if (changed) this.restart(position);
        return;
      }
      welcome.cursor = position;
    } else if (position === null || (sameEpoch(cursor, position) && isAfter(position, cursor))) {
      // The tab missed events the stream has already passed: replay them.
      resumeFrom = cursor;
    } else if (!sameEpoch(cursor, position)) {
      welcome.reset = { reason: "history_unavailable", id: position };
    }
    if (resumeFrom === undefined && (changed || this.tab.state === "failed")) resumeFrom = position;
    if (resumeFrom !== undefined) this.restart(resumeFrom);
    this.tab.post({ ...welcome, state: this.tab.state });
  }

  bye({ from }) {
    const changed = this.unionChangedBy(() => this.wants.delete(from));
    // Fewer types may be what a refused stream needs; otherwise the
    // extra types cost nothing until the next reconnect drops them.
    if (this.tab.state === "failed" && changed) {
      this.restart(this.connection.lastEventId);
    }
  }

  frame(frame) {
    if (frame.type === STREAM_RESET) {
      const reset = { id: frame.id, reason: parseJson(frame.data).reason };
      this.tab.post({ kind: "reset", reset });
      this.tab.applyReset(reset);
    } else if (frame.data === null) {
      this.tab.adopt(frame.id);
    } else {
      const event = { type: frame.type, data: frame.data, id: frame.id };
      this.tab.post({ kind: "event", event });
      this.tab.deliver(event);
    }
    if (frame.id !== undefined) {
      for (const [to, seq] of this.waiting) {
        this.tab.post({ kind: "welcome", to, seq, cursor: frame.id, state: this.tab.state });
      }
      this.waiting.clear();
    }
  }

  state(state, detail) {
    this.tab.post({ kind: "state", state, detail });
    this.tab.setState(state, detail);
  }

  stop() {
    this.connection.stop();
  }
}

/* Leadership through the Web Locks API: the lock holder leads. */
class LockElection {
  constructor(tab, name) {
    this.tab = tab;
    this.name = name;
  }

  start() {
    this.abort = new AbortController();
    navigator.locks
      .request(this.name, { signal: this.abort.signal }, () => {
        if (this.tab.stopped) return undefined;
        return new Promise((release) => {
          this.release = release;
          this.tab.elected();
        });
      })
      .catch(() => {}); // Aborted while waiting: the tab left.
  }

  stop() {
    this.abort.abort();
    this.release?.();
  }

  receive() {}

  beat() {}
}

/*
 * Leadership by messages, where Web Locks is missing (plain http to a host
 * other than localhost). Two tabs may lead for a moment; the one with the
 * larger id steps down. Followers take events from one leader only, and
 * drop what they have shown, so the overlap shows nothing twice.
 */
class MessageElection {
  constructor(tab) {
    this.tab = tab;
    this.claiming = false;
    this.lastHeard = Date.now();
    this.timeoutMs = Math.max(LEADER_TIMEOUT_MS, tab.config.heartbeatMs * WATCHDOG_HEARTBEATS);
  }

  start() {
    this.firstClaim = setTimeout(() => this.claim(), FIRST_CLAIM_MS);
    this.ticker = setInterval(() => this.tick(), ALIVE_MS);
  }

  stop() {
    clearTimeout(this.firstClaim);
    clearTimeout(this.claimTimer);
    clearInterval(this.ticker);
  }

  tick() {
    if (this.tab.role === "leader") {
      this.beat();
    } else if (Date.now() - this.lastHeard > this.timeoutMs) {
      this.tab.leaderLost();
      this.claim();
    }
  }

  beat() {
    this.tab.post({ kind: "alive" });
  }

  claim() {
    if (this.claiming || this.tab.role === "leader") return;
    this.claiming = true;
    this.tab.post({ kind: "claim" });
    this.claimTimer = setTimeout(() => {
      if (!this.claiming) return;
      this.claiming = false;
      this.tab.elected();
    }, CLAIM_MS);
  }

  receive(message) {
    const leading = this.tab.role === "leader";
    if (["alive", "leader", "welcome", "event", "state"].includes(message.kind)) {
      this.lastHeard = Date.now();
      clearTimeout(this.firstClaim);
      this.claiming = false;
    }
    if (message.kind === "claim") {
      if (leading) this.beat();
      else if (this.claiming && message.from < this.tab.id) this.claiming = false;
    } else if ((message.kind === "alive" || message.kind === "leader") && leading) {
      if (message.from < this.tab.id) this.tab.deposed(message.from);
      else this.tab.post({ kind: "leader" });
    } else if (message.kind === "resign" && message.from === this.tab.leaderTab) {
      this.lastHeard = 0;
      this.claimTimer = setTimeout(() => this.claim(), Math.random() * 100);
    }
  }
}

/* Without BroadcastChannel every tab leads its own connection. */
class SoloElection {
  constructor(tab) {
    this.tab = tab;
  }

  start() {
    this.tab.elected();
  }

  stop() {}

  receive() {}

  beat() {}
}

/*
 * The toast stack. An event's toast outlives its page: one still on screen
 * when the page goes away is shown again on the next page of the tab, for
 * the time it had left. The tab's position is past that event already (it
 * was shown), and the page may have been replaced the moment it arrived,
 * for instance while a form's POST was answered.
 */
class Toasts {
  constructor(timeoutMs, storageKey) {
    this.timeoutMs = timeoutMs;
    this.storageKey = storageKey;
    // Toast element -> what it shows and when it goes ({..., expiresAt}).
    this.carried = new Map();
  }

  container() {
    if (!this.stack || !this.stack.isConnected) {
      this.stack = document.querySelector("[data-notifications-toasts]");
      if (!this.stack) {
        this.stack = document.createElement("section");
        this.stack.className = "notifications-toasts";
        document.body.append(this.stack);
      }
      this.stack.setAttribute("aria-live", "polite");
      this.stack.setAttribute("aria-relevant", "additions");
      if (!this.stack.hasAttribute("aria-label")) this.stack.setAttribute("aria-label", "Notifications");
    }
    return this.stack;
  }

  // Text only: whatever the payload holds is shown, never interpreted. A
  // toast with a key (the formatter's, or its event's id) is shown once
  // while on screen, and is carried to the next page.
  show(title, text, kind, href, key = null, timeoutMs = this.timeoutMs) {
    const stack = this.container();
    if (key !== null && [...stack.children].some((toast) => toast.dataset.key === key)) return;
    const toast = document.createElement("div");
    toast.className = "notifications-toast";
    toast.dataset.kind = kind;
    const heading = document.createElement("strong");
    heading.className = "notifications-toast-title";
    heading.textContent = title;
    const body = document.createElement("p");
    body.className = "notifications-toast-text";
    body.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "notifications-toast-close";
    close.setAttribute("aria-label", "Dismiss notification");
    close.textContent = "×";
    close.addEventListener("click", () => toast.remove());
    toast.addEventListener("keydown", (event) => {
      if (event.key === "Escape") toast.remove();
    });
    toast.append(heading, body, close);
    if (href) {
      const link = document.createElement("a");
      link.className = "notifications-toast-link";
      link.href = href;
      link.textContent = "View";
      body.append(" ", link);
    }
    for (const gone of this.carried.keys()) if (!gone.isConnected) this.carried.delete(gone);
    if (key !== null) {
      toast.dataset.key = key;
      this.carried.set(toast, { title, text, kind, href, key, expiresAt: null });
    }
    stack.append(toast);
    while (stack.children.length > MAX_TOASTS) stack.firstElementChild.remove();
    if (this.timeoutMs > 0) this.expire(toast, timeoutMs);
  }

  // Leave a toast the reader is pointing at or working in.
  expire(toast, timeoutMs) {
    const carried = this.carried.get(toast);
    if (carried) carried.expiresAt = Date.now() + timeoutMs;
    setTimeout(() => {
      if (toast.matches(":hover, :focus-within")) this.expire(toast, this.timeoutMs);
      else toast.remove();
    }, timeoutMs);
  }

  // On pagehide: keep the toasts still on screen for the next page.
  carry() {
    const left = [...this.carried]
      .filter(([toast, shown]) => toast.isConnected && hasTimeLeft(shown.expiresAt))
      .map(([, shown]) => shown);
    try {
      if (left.length) sessionStorage.setItem(this.storageKey, JSON.stringify(left));
      else sessionStorage.removeItem(this.storageKey);
    } catch {
      // Storage may be full or disabled; the toasts then go with the page.
    }
  }

  // On start: show what the previous page of the tab left on screen, if
  // there is time left (a page without toasts may have come in between).
  restore() {
    let left;
    try {
      left = parseJson(sessionStorage.getItem(this.storageKey) ?? "[]");
      sessionStorage.removeItem(this.storageKey);
    } catch {
      return;
    }
    if (!Array.isArray(left)) return;
    for (const { title, text, kind, href, key, expiresAt } of left.filter(Boolean)) {
      // Anything else under the key, left by another script, is skipped.
      if (![title, text, kind, key].every((field) => typeof field === "string")) continue;
      if (expiresAt !== null && typeof expiresAt !== "number") continue;
      if (!hasTimeLeft(expiresAt)) continue;
      const timeoutMs = expiresAt === null ? undefined : expiresAt - Date.now();
      this.show(title, text, kind, typeof href === "string" ? href : null, key, timeoutMs);
    }
  }
}

// Whether a toast that goes at `expiresAt` (null: when dismissed) has time
// enough left to be shown on another page.
function hasTimeLeft(expiresAt) {
  return expiresAt === null || expiresAt - Date.now() >= MIN_CARRIED_TOAST_MS;
}

class Indicator {
  show(state) {
    if (!this.element || !this.element.isConnected) {
      this.element = document.querySelector("[data-notifications-state]");
      if (!this.element) {
        this.element = document.createElement("div");
        this.element.className = "notifications-state";
        this.element.setAttribute("data-notifications-state", "");
        document.body.append(this.element);
      }
      this.element.setAttribute("role", "status");
    }
    this.element.dataset.state = state;
    this.element.textContent = STATE_LABELS[state];
  }
}

function humanize(type) {
  const words = type.replace(/[_.-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function defaultToastText(event) {
  const data = event.data;
  if (typeof data === "string") return data;
  if (data && typeof data === "object") {
    for (const key of ["text", "message", "title"]) {
      if (typeof data[key] === "string") return data[key];
    }
  }
  return JSON.stringify(data);
}

/*
 * One tab's part: it shows events after its own position, as leader or
 * follower. Messages on the channel: "hello"/"bye" (follower to leader),
 * "leader", "welcome", "event", "reset", "state", "resign" (leader to
 * tabs), "alive"/"claim" (election without Web Locks).
 */
class Tab {
  constructor(config, api) {
    this.config = config;
    this.api = api;
    this.id = randomId();
    this.types = new Set(config.types);
    this.storageKey = `notifications:last-event-id:${config.url}`;
    this.cursor = this.load();
    this.role = "follower";
    this.state = null;
    this.leader = null;
    this.leaderTab = null;
    this.welcomed = false;
    this.helloSeq = 0;
    this.stopped = false;
    // Tabs share a connection to the same stream URL (BroadcastChannel and
    // locks are per page origin; the stream may be on another one).
    const streamUrl = new URL(config.url, location.href);
    const name = `notifications:${streamUrl.origin}${streamUrl.pathname}`;
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
    if (this.channel) this.channel.onmessage = (message) => this.receive(message.data);
    if (!this.channel) this.election = new SoloElection(this);
    else if (navigator.locks) this.election = new LockElection(this, name);
    else this.election = new MessageElection(this);
  }

  start() {
    // Screen readers announce additions to a live region that already exists.
    if (this.config.toasts) {
      this.api.toasts.container();
      this.api.toasts.restore();
    }
    this.setState("connecting");
    this.election.start();
    if (this.role !== "leader") this.sendHello();
  }

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.helloTimer);
    if (this.leader) {
      this.leader.stop();
      this.post({ kind: "resign" });
    } else {
      this.post({ kind: "bye" });
    }
    this.election.stop();
    this.channel?.close();
    this.setState("closed");
  }

  post(message) {
    if (!this.stopped || message.kind === "resign" || message.kind === "bye") {
      this.channel?.postMessage({ ...message, from: this.id });
    }
  }

  elected() {
    if (this.stopped || this.role === "leader") return;
    clearTimeout(this.helloTimer);
    this.role = "leader";
    this.leaderTab = this.id;
    this.welcomed = true;
    this.leader = new Leader(this);
    this.post({ kind: "leader" });
  }

  deposed(leaderTab) {
    this.leader.stop();
    this.leader = null;
    this.role = "follower";
    this.follow(leaderTab);
  }

  follow(leaderTab) {
    this.leaderTab = leaderTab;
    this.welcomed = false;
    this.sendHello();
  }

  sendHello() {
    clearTimeout(this.helloTimer);
    if (this.stopped || this.role === "leader") return;
    this.helloSeq += 1;
    const { topics, types } = this.config;
    this.post({ kind: "hello", cursor: this.cursor, topics, types, seq: this.helloSeq });
    this.helloTimer = setTimeout(() => {
      if (!this.welcomed) this.sendHello();
    }, HELLO_RETRY_MS);
  }

  receive(message) {
    if (this.stopped) return;
    this.election.receive(message);
    const fromLeader = this.welcomed && message.from === this.leaderTab;
    switch (message.kind) {
      case "leader":
        if (this.role === "follower") this.follow(message.from);
        break;
      case "hello":
        this.leader?.hello(message);
        break;
      case "bye":
        this.leader?.bye(message);
        break;
      case "welcome":
        if (message.to === this.id && message.seq === this.helloSeq && this.role === "follower") {
          this.welcomed = true;
          this.leaderTab = message.from;
          if (message.reset) this.applyReset(message.reset);
          if (message.cursor) this.adopt(message.cursor);
          this.setState(message.state, null);
        }
        break;
      case "event":
        if (fromLeader) this.deliver(message.event);
        break;
      case "reset":
        if (fromLeader) this.applyReset(message.reset);
        break;
      case "state":
        if (fromLeader) this.setState(message.state, message.detail);
        break;
      case "resign":
        if (message.from === this.leaderTab && this.role === "follower") this.leaderLost();
        break;
    }
  }

  leaderLost() {
    this.welcomed = false;
    this.setState("reconnecting");
  }

  load() {
    try {
      return sessionStorage.getItem(this.storageKey);
    } catch {
      return null;
    }
  }

  adopt(id) {
    if (this.cursor === null) this.moveTo(id);
  }

  moveTo(id) {
    this.cursor = id;
    try {
      sessionStorage.setItem(this.storageKey, id);
    } catch {
      // Storage may be full or disabled; the position then lasts this page.
    }
  }

  deliver(event) {
    if (event.id !== undefined) {
      if (this.cursor !== null && !isAfter(event.id, this.cursor)) return;
      this.moveTo(event.id);
    }
    if (!this.types.has(event.type)) return;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      data = event.data;
    }
    const detail = { type: event.type, data, id: event.id };
    this.api.emit("event", detail);
    if (this.config.toasts) {
      let text;
      try {
        text = this.api.formatToast(detail);
      } catch (error) {
        reportError(error); // A page's formatter must not break the stream.
        return;
      }
      // Names the toast on this page and the next, which show it once.
      const key = String(text?.key ?? event.id ?? randomId());
      if (text !== null && typeof text === "object") {
        const { title, kind, href } = text;
        this.api.toasts.show(title ?? humanize(event.type), String(text.text), kind ?? "event", href, key);
      } else if (text !== null && text !== undefined) {
        this.api.toasts.show(humanize(event.type), String(text), "event", undefined, key);
      }
    }
  }

  applyReset(reset) {
    if (this.cursor !== null && !sameEpoch(this.cursor, reset.id)) this.cursor = null;
    if (this.cursor !== null && !isAfter(reset.id, this.cursor)) return;
    this.moveTo(reset.id);
    this.api.emit("reset", { ...reset });
  }

  setState(state, detail) {
    if (state === this.state) return;
    this.state = state;
    if (this.config.indicator) this.api.indicator.show(state);
    this.api.emit("state", { state, ...detail });
    if (state === "failed" && this.config.toasts) {
      const reason = detail?.reason ? `: ${detail.reason}` : ".";
      this.api.toasts.show("Live notifications stopped", `The server refused the stream${reason}`, "error");
    }
  }
}

const DEFAULTS = {
  url: null,
  baseUrl: null,
  types: [],
  topics: null,
  withCredentials: false,
  heartbeatMs: 15000,
  retryMs: 2000,
  toasts: false,
  toastMs: 8000,
  indicator: false,
  documentEvents: false,
};

// A list of names, or one comma-separated string of them (as the template tag takes).
function names(value) {
  const list = typeof value === "string" ? value.split(",") : [...value];
  return list.map((name) => name.trim()).filter(Boolean);
}

function configure(options) {
  const config = { ...DEFAULTS, ...options };
  if (!config.url && config.baseUrl) {
    // new URL() drops the last segment of a base without a trailing slash.
    const base = String(config.baseUrl).replace(/\/?$/, "/");
    config.url = new URL("subscribe/", new URL(base, location.href)).href;
  }
  if (!config.url) {
    throw new TypeError(
      "connect() needs a url (the subscribe URL) or a baseUrl (where notifications.urls is mounted).",
    );
  }
  config.types = names(config.types);
  config.topics = names(config.topics ?? config.types);
  return config;
}

/*
 * Open the client that `options` describes (see the top of this file) and
 * return its API. Each call is a client of its own; close() ends it.
 */
export function connect(options = {}) {
  const config = configure(options);
  const events = new EventTarget();
  let tab = null;
  let closed = false;

  const listen = (name, callback) => {
    const listener = (event) => callback(event.detail);
    events.addEventListener(name, listener);
    return () => events.removeEventListener(name, listener);
  };
  const api = {
    toasts: new Toasts(config.toastMs, `notifications:toasts:${config.url}`),
    indicator: new Indicator(),
    formatToast: config.formatToast ?? defaultToastText,
    emit(name, detail) {
      events.dispatchEvent(new CustomEvent(name, { detail }));
      if (config.documentEvents) document.dispatchEvent(new CustomEvent(`notifications:${name}`, { detail }));
    },
    on: (type, callback) =>
      listen("event", (detail) => {
        if (type === "*" || detail.type === type) callback(detail);
      }),
    onReset: (callback) => listen("reset", callback),
    onState: (callback) =>
      listen("state", ({ state, ...detail }) => callback(state, Object.keys(detail).length ? detail : null)),
    get state() {
      return tab?.state ?? null;
    },
    get role() {
      return tab?.role ?? null;
    },
    get lastEventId() {
      return tab?.cursor ?? null;
    },
    close() {
      closed = true;
      removeEventListener("pagehide", hide);
      removeEventListener("pageshow", show);
      removeEventListener("DOMContentLoaded", open);
      tab?.stop();
    },
  };
  if (config.onEvent) api.on("*", config.onEvent);
  if (config.onReset) api.onReset(config.onReset);
  if (config.onState) api.onState(config.onState);

  function open() {
    if (closed) return;
    tab = new Tab(config, api);
    tab.start();
  }
  const hide = () => {
    if (tab && config.toasts) api.toasts.carry();
    tab?.stop();
  };
  // A page restored from the back/forward cache starts over where it was.
  const show = (event) => {
    if (event.persisted) open();
  };
  addEventListener("pagehide", hide);
  addEventListener("pageshow", show);
  // Toasts and the indicator need a body.
  if (document.body) open();
  else addEventListener("DOMContentLoaded", open, { once: true });
  return api;
}
