/*
 * Live notifications for server-rendered pages: one shared, resilient
 * connection to the notifications stream, and toasts.
 *
 * Put it on a page with the template tag, which also writes its
 * configuration (a JSON script element with id "notifications-config"):
 *
 *     {% load notifications %}
 *     {% notifications_client types="announcement,task_completed" %}
 *
 * API: window.notifications, defined when this deferred script runs (use it
 * from a later deferred script or a DOMContentLoaded listener).
 *
 *   notifications.on(type, callback)
 *       Call callback({type, data, id}) for each new event of `type` ("*":
 *       every type of this page). `data` is the parsed JSON payload.
 *       Return a function that unsubscribes.
 *   notifications.onReset(callback)
 *       Call callback({reason, id}) when events may have been missed (the
 *       server restarted, or its history no longer reaches back far enough):
 *       reload whatever state the page shows.
 *   notifications.onState(callback)
 *       Call callback(state) when the connection state changes: "connecting",
 *       "live", "reconnecting", "failed" (the server refused the stream) or
 *       "closed".
 *   notifications.state, notifications.role ("leader" holds the connection,
 *       "follower" gets events from it), notifications.lastEventId
 *   notifications.formatToast = (event) => text or null (no toast)
 *   notifications.close()
 *
 * The same happenings are dispatched on `document` as CustomEvents
 * "notifications:event", "notifications:reset" and "notifications:state"
 * (detail as above), for scripts that run before this one.
 *
 * Behaviour:
 * - The stream is read with fetch(), not EventSource: fetch sees the
 *   server's heartbeat comments (EventSource hides them), sends
 *   Last-Event-ID as a header on every reconnect, tells a refusal (4xx)
 *   from a network error, and leaves reconnection to this script.
 * - Watchdog: nothing received, not even a heartbeat, for 2.5 heartbeats
 *   means the connection is dead though not closed: reconnect.
 * - Errors: reconnect after the server's `retry:` delay, doubling on each
 *   failure in a row (at most 30 s), with random jitter. `server_shutdown`:
 *   reconnect after its `reconnect_after_ms`, quietly. A 4xx answer stops
 *   retrying ("failed") until the set of subscribed types changes.
 * - Each tab remembers the id of the last event it showed in
 *   sessionStorage, so the next page in the tab resumes from there:
 *   navigation loses nothing and shows nothing twice.
 * - One connection per browser: the tabs of an origin elect a leader that
 *   holds the connection for the union of their types and relays every
 *   frame over a BroadcastChannel. The election uses the Web Locks API,
 *   which browsers offer only in secure contexts (https, localhost,
 *   127.0.0.1); elsewhere the tabs elect by messages on the channel. A tab
 *   that arrives behind the shared connection (it was navigating while
 *   events came) makes the leader resume from the tab's position: tabs
 *   drop events they have already shown, so the others see nothing twice.
 * - On pagehide the tab closes its connection (or leaves the group), so
 *   the next leader takes over at once.
 */
(() => {
  "use strict";

  const CONFIG_ELEMENT_ID = "notifications-config";
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

  /* Parse the text/event-stream format incrementally. */
  class EventStreamParser {
    constructor(onFrame, onRetry) {
      this.onFrame = onFrame;
      this.onRetry = onRetry;
      this.pending = "";
      this.clear();
    }

    clear() {
      this.type = "";
      this.data = [];
      this.id = undefined;
    }

    feed(text) {
      let buffer = this.pending + text;
      // A trailing CR may be the first half of a CRLF split across chunks.
      const heldBack = buffer.endsWith("\r") ? "\r" : "";
      if (heldBack) buffer = buffer.slice(0, -1);
      const lines = buffer.split(/\r\n|\r|\n/);
      this.pending = lines.pop() + heldBack;
      for (const line of lines) this.line(line);
    }

    line(line) {
      if (line === "") {
        this.dispatch();
        return;
      }
      if (line.startsWith(":")) return;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id" && !value.includes("\0")) this.id = value;
      else if (field === "retry" && /^\d+$/.test(value)) this.onRetry(Number(value));
    }

    dispatch() {
      // An id without data moves the position and fires no event.
      if (this.id !== undefined || this.data.length) {
        this.onFrame({
          type: this.type || "message",
          data: this.data.length ? this.data.join("\n") : null,
          id: this.id,
        });
      }
      this.clear();
    }
  }

  /*
   * One stream at a time from the server, reconnecting until stopped.
   * handlers: frame({type, data, id}), state(state, detail), activity().
   */
  class Connection {
    constructor(config, handlers) {
      this.url = config.url;
      this.heartbeatMs = config.heartbeatMs;
      this.retryMs = config.retryMs;
      this.handlers = handlers;
      this.generation = 0;
      this.lastEventId = null;
      this.topics = [];
    }

    start(topics, lastEventId) {
      this.stop();
      this.topics = topics;
      this.lastEventId = lastEventId;
      this.run(this.generation);
    }

    stop() {
      this.generation += 1;
      this.controller?.abort();
      clearTimeout(this.sleepTimer);
      this.wake?.();
    }

    async run(generation) {
      let failures = 0;
      while (generation === this.generation) {
        const outcome = await this.attempt(generation);
        if (generation !== this.generation) return;
        let delay;
        if (outcome.refused) {
          this.handlers.state("failed", { status: outcome.status, reason: outcome.reason });
          return;
        } else if (outcome.farewellMs !== undefined) {
          failures = 0;
          delay = outcome.farewellMs * (1 + Math.random() / 2);
        } else {
          if (outcome.opened) failures = 0;
          delay = withJitter(Math.min(MAX_BACKOFF_MS, this.retryMs * 2 ** failures));
          failures += 1;
        }
        this.handlers.state("reconnecting");
        await new Promise((resolve) => {
          this.wake = resolve;
          this.sleepTimer = setTimeout(resolve, delay);
        });
      }
    }

    async attempt(generation) {
      const controller = new AbortController();
      this.controller = controller;
      let lastActivity = Date.now();
      const watchdog = setInterval(
        () => {
          if (Date.now() - lastActivity > this.heartbeatMs * WATCHDOG_HEARTBEATS) controller.abort();
        },
        Math.max(this.heartbeatMs / 4, 250),
      );
      let opened = false;
      let farewellMs;
      const parser = new EventStreamParser(
        (frame) => {
          if (generation !== this.generation) return;
          if (frame.type === "server_shutdown") {
            farewellMs = parseJson(frame.data).reconnect_after_ms ?? this.retryMs;
            return;
          }
          if (frame.id !== undefined) this.lastEventId = frame.id;
          this.handlers.frame(frame);
        },
        (milliseconds) => {
          this.retryMs = milliseconds;
        },
      );
      try {
        const url = new URL(this.url, location.href);
        url.searchParams.set("types", this.topics.join(","));
        const headers = { Accept: "text/event-stream" };
        if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
        const response = await fetch(url, {
          headers,
          signal: controller.signal,
          cache: "no-store",
          credentials: "same-origin",
        });
        const type = response.headers.get("Content-Type") || "";
        if (!response.ok || !type.startsWith("text/event-stream")) {
          const reason = (await response.text()).trim() || response.statusText;
          const permanent = response.status >= 400 && response.status < 500;
          return { refused: permanent && ![408, 429].includes(response.status), status: response.status, reason };
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done || generation !== this.generation) break;
          lastActivity = Date.now();
          parser.feed(value);
          if (farewellMs !== undefined) break;
          if (!opened) {
            opened = true;
            this.handlers.state("live");
          }
          this.handlers.activity();
        }
      } catch (error) {
        return { opened, reason: String(error) };
      } finally {
        clearInterval(watchdog);
        controller.abort();
      }
      return { opened, farewellMs };
    }
  }

  /* The tab that holds the connection, for itself and for its followers. */
  class Leader {
    constructor(tab) {
      this.tab = tab;
      this.topicsByTab = new Map([[tab.id, tab.config.topics]]);
      // Followers without a position, welcomed once the stream has one.
      this.waiting = new Map();
      this.connection = new Connection(tab.config, {
        frame: (frame) => this.frame(frame),
        state: (state, detail) => this.state(state, detail),
        activity: () => tab.election.beat(),
      });
      this.connection.start(this.union(), tab.cursor);
    }

    union() {
      return [...new Set([...this.topicsByTab.values()].flat())].sort();
    }

    restart(lastEventId) {
      if (this.tab.state === "failed") this.state("connecting");
      this.connection.start(this.union(), lastEventId);
    }

    hello({ from, cursor, topics, seq }) {
      const before = this.union().join();
      this.topicsByTab.set(from, topics);
      const changed = this.union().join() !== before;
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
      const before = this.union().join();
      this.topicsByTab.delete(from);
      // Fewer types may be what a refused stream needs; otherwise the
      // extra types cost nothing until the next reconnect drops them.
      if (this.tab.state === "failed" && this.union().join() !== before) {
        this.restart(this.connection.lastEventId);
      }
    }

    frame(frame) {
      if (frame.type === "stream_reset") {
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

  class Toasts {
    constructor(timeoutMs) {
      this.timeoutMs = timeoutMs;
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

    // Text only: whatever the payload holds is shown, never interpreted.
    show(title, text, kind) {
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
      const stack = this.container();
      stack.append(toast);
      while (stack.children.length > MAX_TOASTS) stack.firstElementChild.remove();
      if (this.timeoutMs > 0) this.expire(toast);
    }

    // Leave a toast the reader is pointing at or working in.
    expire(toast) {
      setTimeout(() => {
        if (toast.matches(":hover, :focus-within")) this.expire(toast);
        else toast.remove();
      }, this.timeoutMs);
    }
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
      const name = `notifications:${new URL(config.url, location.href).pathname}`;
      this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
      if (this.channel) this.channel.onmessage = (message) => this.receive(message.data);
      if (!this.channel) this.election = new SoloElection(this);
      else if (navigator.locks) this.election = new LockElection(this, name);
      else this.election = new MessageElection(this);
    }

    start() {
      // Screen readers announce additions to a live region that already exists.
      if (this.config.toasts) this.api.toasts.container();
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
      this.post({ kind: "hello", cursor: this.cursor, topics: this.config.topics, seq: this.helloSeq });
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
      document.dispatchEvent(new CustomEvent("notifications:event", { detail }));
      if (this.config.toasts) {
        let text;
        try {
          text = this.api.formatToast(detail);
        } catch (error) {
          reportError(error); // A page's formatter must not break the stream.
          return;
        }
        if (text !== null && text !== undefined) this.api.toasts.show(humanize(event.type), String(text), "event");
      }
    }

    applyReset(reset) {
      if (this.cursor !== null && !sameEpoch(this.cursor, reset.id)) this.cursor = null;
      if (this.cursor !== null && !isAfter(reset.id, this.cursor)) return;
      this.moveTo(reset.id);
      document.dispatchEvent(new CustomEvent("notifications:reset", { detail: { ...reset } }));
    }

    setState(state, detail) {
      if (state === this.state) return;
      this.state = state;
      if (this.config.indicator) this.api.indicator.show(state);
      document.dispatchEvent(new CustomEvent("notifications:state", { detail: { state } }));
      if (state === "failed" && this.config.toasts) {
        const reason = detail?.reason ? `: ${detail.reason}` : ".";
        this.api.toasts.show("Live notifications stopped", `The server refused the stream${reason}`, "error");
      }
    }
  }

  function listen(name, select, callback) {
    const listener = (event) => {
      if (select(event.detail)) callback(event.detail);
    };
    document.addEventListener(name, listener);
    return () => document.removeEventListener(name, listener);
  }

  function readConfig() {
    const element = document.getElementById(CONFIG_ELEMENT_ID);
    if (!element) throw new Error(`notifications.js needs a JSON script element with id "${CONFIG_ELEMENT_ID}".`);
    return JSON.parse(element.textContent);
  }

  const config = readConfig();
  let tab = null;
  const api = {
    toasts: new Toasts(config.toastMs),
    indicator: new Indicator(),
    formatToast: defaultToastText,
    on: (type, callback) =>
      listen("notifications:event", (detail) => type === "*" || detail.type === type, callback),
    onReset: (callback) => listen("notifications:reset", () => true, callback),
    onState: (callback) => listen("notifications:state", () => true, (detail) => callback(detail.state)),
    get state() {
      return tab.state;
    },
    get role() {
      return tab.role;
    },
    get lastEventId() {
      return tab.cursor;
    },
    close: () => tab.stop(),
  };
  window.notifications = api;

  function open() {
    tab = new Tab(config, api);
    tab.start();
  }

  addEventListener("pagehide", () => tab?.stop());
  // A page restored from the back/forward cache starts over where it was.
  addEventListener("pageshow", (event) => {
    if (event.persisted) open();
  });
  if (document.body) open();
  else addEventListener("DOMContentLoaded", open, { once: true });
})();
