// CreatorNexus streaming client (protocol v1, docs/protocol.md): one WebSocket, any number of streams.
// Standalone ES module, no dependencies. Copy it freely. API: docs/client.md.

const SUBPROTOCOL = "creatornexus.v1";
const BACKOFF_BASE_MS = 500; // first retry waits up to half a second...
const BACKOFF_CAP_MS = 30_000; // ...and no retry ever waits more than 30 s
const STABLE_AFTER_MS = 60_000; // a connection that lived a minute resets the backoff
const RENEW_MARGIN_MS = 30_000; // the socket's token is renewed in-band this long before it expires (a third of
const RENEW_RETRY_MS = 2_000; // what is left, for short tokens); a failed renewal is tried again this soon,
const RENEW_MIN_WAIT_MS = 1_000; // and never more often than this (a client clock far ahead of the server's)
const CLOSE_UNAUTHORIZED = 4401; // token missing, bad, expired or revoked: refresh it, then reconnect
const CLOSE_FORBIDDEN = 4403; // not allowed at all: retrying cannot help
const CLOSE_BY_CLIENT = 1000;
const CLOSE_SERVICE_RESTART = 1012; // that server process drains for a deploy: reconnect now (another one), resume
// Any other close (1001 going away, 1006 dropped, 4408 idle, 4413 too slow, ...) reconnects with backoff, then resumes.
const TERMINAL = { "stream.completed": "completed", "stream.failed": "failed", "stream.cancelled": "cancelled" };

/** Full jitter: a random wait in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt, base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS) {
  return Math.random() * Math.min(cap, base * 2 ** attempt);
}

/**
 * Events (all CustomEvent, the frame or a summary in `detail`):
 *   state      {state: "connecting"|"connected"|"reconnecting"|"offline"|"signed-out", retryInMs?, reason?}
 *   started    the stream.started frame          chunk      a stream.chunk frame, never a duplicate seq
 *   completed / failed / cancelled                the terminal frame of a stream
 *   error      an error frame ({code, message, request_id?, session_id?})
 *   renewed    the auth.ok frame: the socket's token was renewed in-band, it now lives until token_expires_at
 */
export class StreamClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.url                 ws(s)://host/ws/stream/
   * @param {(opts: {fresh: boolean}) => Promise<string|null>} options.getToken
   *        a valid access token; fresh=true asks for a newly refreshed one: the socket's token is about to
   *        expire (it is renewed in-band), or the server refused the last one (4401).
   *        Resolve null when the user is signed out; throw when the token service is unreachable (retried).
   * @param {Storage|null} [options.storage]     where running streams are remembered (default sessionStorage)
   * @param {string} [options.storageKey]
   */
  constructor({ url, getToken, storage = globalThis.sessionStorage ?? null, storageKey = "creatornexus.streams" }) {
    super();
    this.url = url;
    this.getToken = getToken;
    this.storage = storage;
    this.storageKey = storageKey;
    this.state = "offline";
    this.streams = new Map(this.#load()); // session_id -> last seq seen
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.pending = new Map(); // request_id -> {resolve, reject} of generate() calls
    this.requestCounter = 0;
    this.timers = {};
  }

  /** Open the socket (and keep it open until close()); resumes any stream remembered from before a reload. */
  connect() {
    this.stopped = false;
    this.#open(false);
  }

  /** Close for good: no reconnect. Running streams are still remembered for the next connect(). */
  close() {
    this.stopped = true;
    this.#clearTimers();
    this.ws?.close(CLOSE_BY_CLIENT);
    this.ws = null;
    this.#setState("offline", { reason: "closed" });
  }

  /** Ask for a script; resolves with the stream.started frame, rejects with the error frame. */
  generate({ topic, platform, duration, tone, audience }) {
    const request_id = `r${Date.now().toString(36)}-${++this.requestCounter}`;
    const frame = { type: "generate", request_id, topic, platform, duration };
    if (tone) frame.tone = tone;
    if (audience) frame.audience = audience;
    return new Promise((resolve, reject) => {
      if (!this.#send(frame)) return reject(Object.assign(new Error("Not connected."), { code: "offline" }));
      this.pending.set(request_id, { resolve, reject });
    });
  }

  /** Stop a stream; a `cancelled` event follows. */
  cancel(sessionId) {
    return this.#send({ type: "cancel", session_id: sessionId });
  }

  /** Follow a stream from after lastSeq (0 = replay it all), e.g. one started in another tab. */
  resume(sessionId, lastSeq = 0) {
    this.streams.set(sessionId, lastSeq);
    this.#save();
    return this.#sendResume(sessionId, lastSeq);
  }

  /** Stop remembering a stream (its chunks are then ignored). */
  forget(sessionId) {
    this.streams.delete(sessionId);
    this.#save();
  }

  // ------------------------------------------------------------------ connection

  async #open(fresh, reconnecting = fresh || this.attempt > 0) {
    this.#clearTimers();
    this.#setState(reconnecting ? "reconnecting" : "connecting", { retryInMs: 0 });
    let token;
    try {
      token = await this.getToken({ fresh });
    } catch {
      // The token endpoint could not be reached: that is the network, not the session.
      return this.stopped || this.#scheduleReconnect();
    }
    if (this.stopped) return;
    if (!token) return this.#signOut();
    const ws = new WebSocket(this.url, [SUBPROTOCOL, `bearer.${token}`]);
    this.ws = ws;
    let established = false;
    ws.onmessage = (event) => {
      if (!established) {
        established = true;
        this.#onEstablished();
      }
      this.#onFrame(event.data);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.#onClose(event.code, fresh && !established);
    };
  }

  #onEstablished() {
    this.#setState("connected");
    // Only a connection that stays up a minute proves the trouble is over.
    this.timers.stable = setTimeout(() => (this.attempt = 0), STABLE_AFTER_MS);
    for (const [sessionId, lastSeq] of this.streams) this.#sendResume(sessionId, lastSeq);
  }

  #onClose(code, refusedFreshToken) {
    this.#clearTimers();
    for (const { reject } of this.pending.values()) {
      reject(Object.assign(new Error("The connection dropped before the stream started."), { code: "offline" }));
    }
    this.pending.clear();
    if (this.stopped) return;
    if (code === CLOSE_FORBIDDEN) {
      this.stopped = true;
      return this.#setState("offline", { reason: "forbidden" });
    }
    if (code === CLOSE_UNAUTHORIZED) {
      // Even a just-refreshed token was refused: the session is over.
      return refusedFreshToken ? this.#signOut() : this.#open(true);
    }
    // No backoff: the load balancer already sends new sockets to another process, where the streams go on.
    if (code === CLOSE_SERVICE_RESTART) return this.#open(false, true);
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (globalThis.navigator?.onLine === false) {
      this.#setState("offline", { reason: "network" });
      globalThis.addEventListener?.("online", () => !this.stopped && !this.ws && this.#open(false), { once: true });
      return;
    }
    const delay = backoffDelay(this.attempt++);
    this.#setState("reconnecting", { retryInMs: delay, retryAt: Date.now() + delay });
    this.timers.retry = setTimeout(() => this.#open(false), delay);
  }

  // ------------------------------------------------------------------ token lifetime (in-band, no reconnect)

  /** Renew the socket's token before the server closes it at expiry (4401). */
  #scheduleRenewal(expiresAt) {
    clearTimeout(this.timers.renew);
    const left = Date.parse(expiresAt) - Date.now();
    if (!Number.isFinite(left)) return;
    const margin = Math.min(RENEW_MARGIN_MS, left / 3);
    this.timers.renew = setTimeout(() => this.#renew(), Math.max(RENEW_MIN_WAIT_MS, left - margin));
  }

  /** A freshly refreshed token, sent as {"type": "auth"}; the server answers auth.ok (or 4401 if refused). */
  async #renew() {
    const ws = this.ws;
    let token;
    try {
      token = await this.getToken({ fresh: true });
    } catch {
      // The token service is unreachable: retry; should the token expire first, the 4401 path reconnects.
      if (this.ws === ws) this.timers.renew = setTimeout(() => this.#renew(), RENEW_RETRY_MS);
      return;
    }
    if (this.ws !== ws || this.stopped) return; // that socket is gone; the next one starts with a fresh token
    if (!token) {
      this.ws = null;
      ws?.close(CLOSE_BY_CLIENT);
      return this.#signOut();
    }
    this.#send({ type: "auth", token });
  }

  #signOut() {
    this.stopped = true;
    this.#setState("signed-out");
  }

  #clearTimers() {
    for (const timer of Object.values(this.timers)) clearTimeout(timer);
    this.timers = {};
  }

  #setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...extra } }));
  }

  #send(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  #sendResume(sessionId, lastSeq) {
    return this.#send({ type: "resume", session_id: sessionId, last_seq: lastSeq, request_id: `resume:${sessionId}` });
  }

  // ------------------------------------------------------------------ frames

  #onFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    switch (frame.type) {
      case "connection.established":
        this.#scheduleRenewal(frame.token_expires_at);
        break;
      case "auth.ok":
        this.#scheduleRenewal(frame.token_expires_at);
        this.#emit("renewed", frame);
        break;
      case "ping":
        this.#send({ type: "pong", id: frame.id });
        break;
      case "stream.started":
        this.streams.set(frame.session_id, 0);
        this.#save();
        this.pending.get(frame.request_id)?.resolve(frame);
        this.pending.delete(frame.request_id);
        this.#emit("started", frame);
        break;
      case "stream.chunk":
        this.#onChunk(frame);
        break;
      case "error":
        this.#onError(frame);
        break;
      default:
        if (frame.type in TERMINAL && this.streams.has(frame.session_id)) {
          this.forget(frame.session_id);
          this.#emit(TERMINAL[frame.type], frame);
        }
    }
  }

  #onChunk(frame) {
    const lastSeq = this.streams.get(frame.session_id);
    if (lastSeq === undefined || frame.seq <= lastSeq) return; // not ours any more, or a duplicate
    this.streams.set(frame.session_id, frame.seq);
    this.#save();
    this.#emit("chunk", frame);
  }

  #onError(frame) {
    const pending = this.pending.get(frame.request_id);
    if (pending) {
      this.pending.delete(frame.request_id);
      pending.reject(Object.assign(new Error(frame.message), frame));
    }
    const resumed = frame.request_id?.startsWith("resume:") ? frame.request_id.slice(7) : null;
    if (resumed) this.forget(resumed); // the stream is gone (not_found, resume_expired): stop asking for it
    this.#emit("error", resumed ? { ...frame, session_id: resumed } : frame);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // ------------------------------------------------------------------ memory across reloads

  #load() {
    try {
      const saved = JSON.parse(this.storage?.getItem(this.storageKey) ?? "[]");
      return saved.map(({ session_id, last_seq }) => [session_id, last_seq]);
    } catch {
      return [];
    }
  }

  #save() {
    const running = [...this.streams].map(([session_id, last_seq]) => ({ session_id, last_seq }));
    this.storage?.setItem(this.storageKey, JSON.stringify(running));
  }
}
