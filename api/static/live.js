// The live session's client side, for the player page (player.js): the clocks that say where
// playback is (a timeline, or a <video> element), and the two transports of the protocol
// (docs/data-contracts.md, section "Live sessions"): a WebSocket at /live, or POSTs in and
// Server-Sent Events out. A transport is made with the API key (or "") and handlers
// {message(m), close(code, text), error(text)}; open(start) resolves with the `session`
// message or rejects with an ApiError whose status is a close code; send(m) says whether it
// went; stop() ends the session (its final stats still arrive).
"use strict";

const CLOSE_CODES = {
  1000: "session ended",
  1001: "the server ended it",
  1006: "connection lost",
  1008: "policy violation",
  1009: "message too big",
  1011: "server error",
  1013: "too many sessions open",
  4401: "needs the API key",
  4404: "unknown video",
  4503: "no model to generate with",
};

function closeText(event) {
  const meaning = CLOSE_CODES[event.code] || "closed";
  return `${event.code} ${meaning}${event.reason ? `: ${event.reason}` : ""}`;
}

// -- clocks: what "now" is in the video --------------------------------------------------

// A timeline: video time runs at `rate` times wall time while playing.
class TimelineClock {
  constructor(duration) {
    this.duration = duration;
    this.base = 0;
    this.since = null; // performance.now() when it last started, null while paused
    this.rate = 1;
  }
  get playing() {
    return this.since !== null;
  }
  now() {
    const run = this.since === null ? 0 : ((performance.now() - this.since) / 1000) * this.rate;
    return Math.min(this.duration, this.base + run);
  }
  play() {
    if (this.since === null) this.since = performance.now();
  }
  pause() {
    this.base = this.now();
    this.since = null;
  }
  seek(t) {
    this.base = Math.max(0, Math.min(this.duration, t));
    if (this.since !== null) this.since = performance.now();
  }
  setRate(rate) {
    this.base = this.now();
    if (this.since !== null) this.since = performance.now();
    this.rate = rate;
  }
  close() {}
}

// A <video> element: its own time and playback rate are the clock.
class VideoClock {
  constructor(video, duration) {
    this.video = video;
    this.duration = duration;
  }
  get playing() {
    return !this.video.paused && !this.video.ended;
  }
  get rate() {
    return this.video.playbackRate;
  }
  now() {
    return Math.min(this.duration, this.video.currentTime);
  }
  play() {
    return this.video.play();
  }
  pause() {
    this.video.pause();
  }
  seek(t) {
    this.video.currentTime = Math.max(0, Math.min(this.duration, t));
  }
  setRate(rate) {
    this.video.playbackRate = rate;
  }
  close() {
    this.video.pause();
  }
}

// -- the live session over a WebSocket ---------------------------------------------------

class WsTransport {
  constructor(key, handlers) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = key ? `?key=${enc(key)}` : "";
    this.url = `${scheme}//${location.host}/live${query}`;
    this.handlers = handlers;
    this.socket = null;
  }

  // Resolves with the `session` message, rejects with the close code and reason.
  open(start) {
    return new Promise((resolve, reject) => {
      let opened = false;
      const socket = new WebSocket(this.url);
      this.socket = socket;
      socket.onopen = () => socket.send(JSON.stringify(start));
      socket.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          this.handlers.error(`not JSON from the server: ${String(event.data).slice(0, 80)}`);
          return;
        }
        if (!opened && message.type === "session") {
          opened = true;
          resolve(message);
        } else {
          this.handlers.message(message);
        }
      };
      socket.onclose = (event) => {
        if (!opened) reject(new ApiError(event.code, closeText(event)));
        else this.handlers.close(event.code, closeText(event));
      };
    });
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  stop() {
    if (!this.send({ type: "stop" })) this.socket?.close();
  }
}

// -- the same session over HTTP: POSTs in, Server-Sent Events out (where WebSockets are blocked)

class SseTransport {
  constructor(key, handlers) {
    this.key = key;
    this.handlers = handlers;
    this.base = null; // /live/sessions/{sid}
    this.events = null;
    this.queue = []; // messages for the next POST
    this.posting = Promise.resolve(); // POSTs go one after another, in order
    this.ended = false;
  }

  request(path, options = {}) {
    const headers = { "Content-Type": "application/json" };
    if (this.key) headers["X-API-Key"] = this.key;
    return api(path, { ...options, headers });
  }

  async open(start) {
    let session;
    try {
      session = await this.request("/live/sessions", { method: "POST", body: JSON.stringify(start) });
    } catch (error) {
      const code = { 401: 4401, 404: 4404, 503: 4503 }[error.status] ?? error.status;
      throw new ApiError(code, `${code} ${CLOSE_CODES[code] || "refused"}: ${error.message}`);
    }
    this.base = `/live/sessions/${enc(session.session)}`;
    const query = this.key ? `?key=${enc(this.key)}` : "";
    this.events = new EventSource(`${this.base}/events${query}`);
    this.events.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "closed") this.end(message.code ?? 1000, message.reason);
      else this.handlers.message(message);
    };
    this.events.onerror = () => {
      if (this.events.readyState === EventSource.CLOSED) this.end(1006, "the event stream failed");
    };
    return session;
  }

  end(code, reason) {
    if (this.ended) return;
    this.ended = true;
    this.events?.close();
    this.handlers.close(code, closeText({ code, reason }));
  }

  send(message) {
    if (this.ended || this.base === null) return false;
    this.queue.push(message);
    if (this.queue.length === 1) {
      this.posting = this.posting.then(() => this.flush());
    }
    return true;
  }

  async flush() {
    const batch = this.queue.splice(0);
    if (!batch.length || this.ended) return;
    try {
      await this.request(`${this.base}/messages`, { method: "POST", body: JSON.stringify(batch) });
    } catch (error) {
      this.handlers.error(`${error.status} ${error.message}`);
      if (error.status === 404) this.end(1001, "the session has ended");
    }
  }

  stop() {
    if (this.base === null || this.ended) return;
    // the final stats and the `closed` event come on the event stream
    this.posting = this.posting.then(() =>
      // keepalive: a stop as the page goes away still reaches the server
      this.request(this.base, { method: "DELETE", keepalive: true }).catch((error) => this.end(1006, error.message)),
    );
  }
}
