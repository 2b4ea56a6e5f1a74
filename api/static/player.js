// The live danmaku player: plain JavaScript over the live endpoint, no build step.
// Choose a corpus video (its own viewer comments are replayed) or name a film for an ad hoc
// session, press play: a clock runs at the chosen speed (a timeline, or a local video file
// when one is opened), viewers' comments fly across the stage as they come due and go to the
// live session (WebSocket /live) with their times, with the playback position every
// POSITION_MS; the bot's comments fly back highlighted, and the knowledge panel shows the
// facts each one used. Every text from the API goes into the page as text, never as HTML.
"use strict";

const $ = (selector) => document.querySelector(selector);
const enc = encodeURIComponent;
const COMMENT_PAGE = 1000;
const MAX_COMMENT_PAGES = 20; // replay at most 20,000 comments of a video
const TICK_MS = 100; // the clock, the due comments and the stage are updated this often
const POSITION_MS = 250; // a `position` message this often (wall time) while playing
const STATS_MS = 2000; // a `stats` request this often while a session is open
const FLY_VIDEO_S = 8; // a comment crosses the stage in 8 s of video at 1x ...
const MIN_FLY_MS = 3000; // ... but never faster than 3 s of wall time, to stay readable
const LANE_PX = 30;
const MAX_FLYING = 80; // more on the stage at once and the oldest leave early
const CLOSE_CODES = {
  1000: "session ended",
  1006: "connection lost",
  1008: "policy violation",
  1009: "message too big",
  1011: "server error",
  4401: "needs the API key",
  4404: "unknown video",
  4503: "no model to generate with",
};

const state = {
  videos: new Map(),
  video: null, // the chosen corpus video's summary, or null for an ad hoc session
  comments: [], // the corpus video's comments in time order: {time_s, text}
  commentsFor: null,
  next: 0, // index of the next comment to come due
  clock: null,
  lastT: 0,
  lastPositionAt: 0,
  transport: null,
  opening: null, // the promise of the session being opened
  session: null,
  sent: 0,
  bots: new Map(), // seq -> the server's comment message
  selected: null,
  flying: new Set(), // {node, animation} on the stage
  laneFree: [], // wall time (ms) each lane can take the next comment
  fileUrl: null,
  flown: { viewer: 0, bot: 0, mine: 0 },
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = typeof body?.detail === "string" ? body.detail : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return body;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") node.style.cssText = value;
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function setStatus(selector, text, isError = false) {
  const node = $(selector);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

function showError(text) {
  const list = $("#errors");
  list.append(el("li", { className: "error", textContent: `${clock(state.lastT)} ${text}` }));
  while (list.children.length > 20) list.firstElementChild.remove();
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
    this.video.play().catch((error) => showError(`the video does not play: ${error.message}`));
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
  // onMessage(message) for every server message after the session answer; onClose(code, reason)
  constructor(key, onMessage, onClose) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = key ? `?key=${enc(key)}` : "";
    this.url = `${scheme}//${location.host}/live${query}`;
    this.onMessage = onMessage;
    this.onClose = onClose;
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
          showError(`not JSON from the server: ${String(event.data).slice(0, 80)}`);
          return;
        }
        if (!opened && message.type === "session") {
          opened = true;
          resolve(message);
        } else {
          this.onMessage(message);
        }
      };
      socket.onclose = (event) => {
        if (!opened) reject(new ApiError(event.code, closeText(event)));
        else this.onClose(event.code, closeText(event));
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

function closeText(event) {
  const meaning = CLOSE_CODES[event.code] || "closed";
  return `${event.code} ${meaning}${event.reason ? `: ${event.reason}` : ""}`;
}

// -- videos and the session --------------------------------------------------------------

async function loadHealth() {
  const box = $("#health");
  try {
    const health = await api("/health");
    box.replaceChildren(
      ...["store", "index", "model"].map((part) => {
        const { ok, detail } = health[part];
        return el("span", { className: `chip ${ok ? "ok" : "bad"}`, title: detail, textContent: `${part} ${ok ? "✓" : "✗"}` });
      }),
    );
  } catch (error) {
    box.replaceChildren(el("span", { className: "chip bad", textContent: `API unreachable: ${error.message}` }));
  }
}

async function loadVideos() {
  let offset = 0;
  while (offset !== null) {
    const page = await api(`/videos?limit=500&offset=${offset}`);
    for (const v of page.items) state.videos.set(v.id, v);
    offset = page.next_offset;
  }
  $("#video-select").append(
    ...[...state.videos.values()].map((v) => el("option", { value: v.id, textContent: `${v.id} · ${v.title}` })),
  );
  const wanted = new URLSearchParams(location.hash.slice(1)).get("video");
  if (state.videos.has(wanted)) $("#video-select").value = wanted;
  await chooseVideo();
}

async function chooseVideo() {
  await closeSession();
  const id = $("#video-select").value;
  state.video = state.videos.get(id) || null;
  $("#adhoc-row").hidden = state.video !== null;
  $("#stage-title").textContent = state.video?.title ?? "";
  if (state.video) {
    $("#video-info").textContent = `${clock(state.video.duration_s)} · ${state.video.comments} comments`;
    history.replaceState(null, "", `#video=${enc(id)}`);
  } else {
    $("#video-info").textContent = "an ad hoc session: no viewer comments but yours";
    history.replaceState(null, "", location.pathname);
  }
  state.comments = [];
  state.commentsFor = null;
  prepareClock();
  if (state.video) await loadComments(state.video.id);
}

async function loadComments(id) {
  const comments = [];
  let offset = 0;
  for (let i = 0; i < MAX_COMMENT_PAGES && offset !== null; i++) {
    const page = await api(`/videos/${enc(id)}/comments?limit=${COMMENT_PAGE}&offset=${offset}`);
    if (state.video?.id !== id) return; // another video was chosen meanwhile
    for (const c of page.items) comments.push({ time_s: c.time_s, text: c.text });
    offset = page.next_offset;
  }
  state.comments = comments;
  state.commentsFor = id;
  state.next = firstDue(state.lastT);
  setStatus("#session-status", `${comments.length} viewer comments to replay; press play`);
}

function duration() {
  if (state.video) return state.video.duration_s;
  const video = $("#video");
  if (state.fileUrl && Number.isFinite(video.duration)) return video.duration;
  return Math.max(1, Number($("#duration-input").value) || 600);
}

// The clock of the current choice (a local file, when open, else a timeline), at 0.
function prepareClock() {
  state.clock?.close();
  const video = $("#video");
  state.clock = state.fileUrl ? new VideoClock(video, duration()) : new TimelineClock(duration());
  state.clock.setRate(Number($("#speed").value));
  state.clock.seek(0);
  state.lastT = 0;
  state.next = 0;
  $("#seek").max = String(Math.floor(duration()));
  clearStage();
  render();
  $("#play-btn").disabled = false;
}

function policy() {
  const out = {};
  for (const input of document.querySelectorAll("#policy [data-knob]")) {
    if (input.type === "checkbox") out[input.dataset.knob] = input.checked;
    else if (input.value === "") out[input.dataset.knob] = null;
    else out[input.dataset.knob] = Number(input.value);
  }
  return out;
}

// Opens the session of the current choice unless one is open; whether one is.
function openSession() {
  if (state.session) return Promise.resolve(true);
  state.opening ??= startSession().finally(() => {
    state.opening = null;
  });
  return state.opening;
}

async function startSession() {
  await closeSession();
  const start = state.video
    ? { type: "start", video: state.video.id }
    : { type: "start", title: $("#title-input").value.trim() || "未命名", duration_s: Math.round(duration()) };
  start.policy = policy();
  const transport = new WsTransport(
    $("#api-key").value,
    (message) => onServerMessage(transport, message),
    (code, text) => onSessionClosed(transport, code, text),
  );
  state.transport = transport;
  setStatus("#session-status", "opening a live session…");
  let s;
  try {
    s = await transport.open(start);
  } catch (error) {
    if (state.transport !== transport) return false; // closed meanwhile
    state.transport = null;
    setStatus("#session-status", `no session: ${error.message}`, true);
    return false;
  }
  if (state.transport !== transport) {
    transport.stop(); // another choice was made meanwhile
    return false;
  }
  state.session = s;
  $("#stage-title").textContent = s.title;
  setStatus("#session-status", `session ${s.session} · ${s.video ?? "ad hoc"} · ${s.title} · ${clock(s.duration_s)}`);
  $("#stop-btn").disabled = false;
  $("#say-input").disabled = $("#say-btn").disabled = false;
  sendPosition();
  state.statsTimer = setInterval(() => state.transport?.send({ type: "stats" }), STATS_MS);
  return true;
}

async function closeSession() {
  clearInterval(state.statsTimer);
  if (state.clock?.playing) togglePlay();
  const transport = state.transport;
  state.transport = null;
  state.session = null;
  transport?.stop();
  $("#stop-btn").disabled = true;
  $("#say-input").disabled = $("#say-btn").disabled = true;
}

function onSessionClosed(transport, code, text) {
  if (state.transport !== transport) return; // an earlier session's end
  clearInterval(state.statsTimer);
  state.transport = null;
  state.session = null;
  if (state.clock?.playing) togglePlay();
  $("#stop-btn").disabled = true;
  $("#say-input").disabled = $("#say-btn").disabled = true;
  setStatus("#session-status", `session closed: ${text}`, code !== 1000);
}

function send(message) {
  if (state.transport?.send(message)) {
    state.sent++;
    $("#stat-sent").textContent = String(state.sent);
  }
}

function sendPosition() {
  state.lastPositionAt = performance.now();
  send({ type: "position", t: round(state.clock.now()) });
}

function round(t) {
  return Math.round(t * 100) / 100;
}

// -- server messages ---------------------------------------------------------------------

function onServerMessage(transport, message) {
  if (message.type === "comment" && transport === state.transport) onBotComment(message);
  // the stats at an earlier session's stop count only while no other session is open
  else if (message.type === "stats" && [transport, null].includes(state.transport)) renderStats(message);
  else if (message.type === "error") showError(`${message.code}: ${message.detail}`);
}

function renderStats(stats) {
  $("#stat-received").textContent = String(stats.received);
  $("#stat-generated").textContent = String(stats.generated);
  $("#stat-emitted").textContent = String(stats.emitted);
  const dropped = Object.entries(stats.dropped || {});
  const total = dropped.reduce((sum, [, n]) => sum + n, 0);
  $("#stat-dropped").textContent = String(total);
  $("#stat-dropped").title = dropped.map(([why, n]) => `${why}: ${n}`).join("\n") || "none";
  $("#stat-window").textContent = String(stats.window_comments);
}

function onBotComment(message) {
  state.bots.set(message.seq, message);
  const item = el(
    "li",
    { className: "bot-item", dataset: { seq: String(message.seq) }, tabIndex: 0, title: "show its facts" },
    el("span", { className: "time", textContent: clock(message.t) }),
    message.text,
    el("span", { className: "muted", textContent: `  ${(message.facts || []).length} facts` }),
  );
  item.addEventListener("click", () => selectBot(message.seq, true));
  item.addEventListener("keydown", (event) => {
    if (event.key === "Enter") selectBot(message.seq, true);
  });
  $("#bot-history").prepend(item);
  fly(message.text, "bot", message.seq);
  if ($("#follow-latest").checked) selectBot(message.seq);
}

// Show a bot comment and its facts in the knowledge panel; `pin` stops following the latest.
function selectBot(seq, pin = false) {
  const message = state.bots.get(seq);
  if (!message) return;
  if (pin) $("#follow-latest").checked = false;
  state.selected = seq;
  for (const li of document.querySelectorAll("#bot-history li")) {
    li.classList.toggle("selected", li.dataset.seq === String(seq));
  }
  const detail = $("#bot-detail");
  detail.hidden = false;
  detail.dataset.seq = String(seq);
  $("#bot-text").textContent = message.text;
  const copied = message.copied === null || message.copied === undefined ? "" : ` · ${Math.round(message.copied * 100)}% copied`;
  const latency = message.latency_ms === undefined ? "" : ` · ${Math.round(message.latency_ms)} ms`;
  const score = typeof message.score === "number" ? ` · score ${message.score.toFixed(3)}` : "";
  $("#bot-meta").textContent = `#${seq} at ${clock(message.t)} (${message.t} s) · on ${message.trigger}${score}${copied}${latency}`;
  const facts = message.facts || [];
  const most = Math.max(1e-9, ...facts.map((f) => f.mass));
  $("#bot-facts tbody").replaceChildren(
    ...facts.map((f) =>
      el(
        "tr",
        { className: "fact", dataset: { head: f.head } },
        el("td", { textContent: f.head }),
        el("td", { textContent: f.relation }),
        el("td", { textContent: f.tail }),
        el("td", {}, el("span", { className: "bar", style: `width:${Math.round((f.mass / most) * 60)}px` }), f.mass.toFixed(3)),
      ),
    ),
  );
  $("#bot-facts").hidden = facts.length === 0;
  $("#bot-no-facts").hidden = facts.length > 0;
  $("#knowledge-status").textContent = `${state.bots.size} bot comments so far`;
}

// -- the stage ---------------------------------------------------------------------------

function lanes() {
  return Math.max(1, Math.floor($("#lanes").clientHeight / LANE_PX));
}

// A comment flies right to left in the first lane free to take it (the least busy if none).
function fly(text, kind, seq = null) {
  const stage = $("#lanes");
  if (kind === "viewer" && !$("#show-viewers").checked) return;
  const node = el("div", { className: `danmaku ${kind}`, dataset: { kind } });
  if (kind === "bot") {
    node.append(el("span", { className: "badge", textContent: "bot" }), text);
    node.dataset.seq = String(seq);
    node.tabIndex = 0;
    node.title = "show the facts it used";
    node.addEventListener("mouseenter", () => selectBot(seq));
    node.addEventListener("focus", () => selectBot(seq));
    node.addEventListener("click", () => selectBot(seq, true));
  } else {
    node.textContent = text;
  }
  const count = lanes();
  while (state.laneFree.length < count) state.laneFree.push(0);
  const now = performance.now();
  let lane = 0;
  for (let i = 0; i < count; i++) {
    if (state.laneFree[i] <= now) {
      lane = i;
      break;
    }
    if (state.laneFree[i] < state.laneFree[lane]) lane = i;
  }
  node.style.top = `${lane * LANE_PX}px`;
  stage.append(node);
  const width = node.offsetWidth;
  const distance = stage.clientWidth + width;
  const ms = Math.max(MIN_FLY_MS, (FLY_VIDEO_S * 1000) / (state.clock?.rate || 1));
  state.laneFree[lane] = now + (ms * (width + 24)) / distance;
  const animation = node.animate(
    [{ transform: "translateX(0)" }, { transform: `translateX(${-distance}px)` }],
    { duration: ms, easing: "linear", fill: "forwards" },
  );
  const flying = { node, animation };
  state.flying.add(flying);
  animation.onfinish = () => land(flying);
  if (!state.clock?.playing) animation.pause();
  if (kind === "bot") {
    node.addEventListener("mouseenter", () => animation.pause());
    node.addEventListener("mouseleave", () => state.clock?.playing && animation.play());
  }
  state.flown[kind]++;
  $("#stage").dataset[`flown${kind[0].toUpperCase()}${kind.slice(1)}`] = String(state.flown[kind]);
  if (state.flying.size > MAX_FLYING) land(state.flying.values().next().value);
}

function land(flying) {
  flying.animation.cancel();
  flying.node.remove();
  state.flying.delete(flying);
}

function clearStage() {
  for (const flying of [...state.flying]) land(flying);
  state.laneFree = [];
}

// -- playback ----------------------------------------------------------------------------

// Index of the first comment at or after `t`.
function firstDue(t) {
  let lo = 0;
  let hi = state.comments.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (state.comments[mid].time_s < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

async function togglePlay() {
  const c = state.clock;
  if (!c) return;
  if (c.playing) {
    c.pause();
    for (const { animation } of state.flying) animation.pause();
    if (state.session) sendPosition();
  } else {
    await openSession(); // without a session the viewers' comments still play
    if (c !== state.clock || c.playing) return; // another choice, or another press, meanwhile
    if (c.now() >= c.duration) seekTo(0);
    c.play();
    for (const { animation } of state.flying) animation.play();
  }
  render();
}

function seekTo(t) {
  if (!state.clock) return;
  state.clock.seek(t);
  state.lastT = state.clock.now();
  state.next = firstDue(state.lastT);
  clearStage();
  if (state.session) sendPosition();
  render();
}

// Every TICK_MS: the comments that came due fly and go to the session, the position goes
// out every POSITION_MS, the end of the video pauses.
function tick() {
  const c = state.clock;
  if (!c) return;
  const t = c.now();
  if (t < state.lastT - 1 || t > state.lastT + 10) {
    state.next = firstDue(t); // the clock jumped (a video seeked by itself): no replay
    clearStage();
  }
  if (c.playing || t > state.lastT) {
    while (state.next < state.comments.length && state.comments[state.next].time_s <= t) {
      const comment = state.comments[state.next++];
      fly(comment.text, "viewer");
      if (state.session) send({ type: "comment", text: comment.text, t: round(comment.time_s) });
    }
  }
  state.lastT = t;
  if (state.session && c.playing && performance.now() - state.lastPositionAt >= POSITION_MS) sendPosition();
  if (c.playing && t >= c.duration) togglePlay();
  render();
}

function render() {
  const c = state.clock;
  if (!c) return;
  const t = c.now();
  $("#clock").textContent = `${clock(t)} / ${clock(c.duration)}`;
  $("#stage-clock").textContent = clock(t);
  $("#stage").dataset.t = String(round(t));
  $("#stage").dataset.playing = String(c.playing);
  if (document.activeElement !== $("#seek")) $("#seek").value = String(Math.floor(t));
  const button = $("#play-btn");
  button.textContent = c.playing ? "⏸ 暂停 Pause" : "▶ 播放 Play";
  button.setAttribute("aria-label", c.playing ? "pause" : "play");
}

function say(event) {
  event.preventDefault();
  const input = $("#say-input");
  const text = input.value.trim();
  if (!text || !state.session) return;
  send({ type: "comment", text, t: round(state.clock.now()) });
  fly(text, "mine");
  input.value = "";
}

function openFile(event) {
  const file = event.target.files[0];
  if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
  state.fileUrl = file ? URL.createObjectURL(file) : null;
  const video = $("#video");
  video.hidden = !file;
  if (!file) {
    video.removeAttribute("src");
    prepareClock();
    return;
  }
  video.src = state.fileUrl;
  video.addEventListener(
    "loadedmetadata",
    () => {
      if (!state.video) $("#duration-input").value = String(Math.round(video.duration));
      prepareClock();
    },
    { once: true },
  );
}

// -- wiring ------------------------------------------------------------------------------

function wire() {
  $("#video-select").addEventListener("change", () => chooseVideo().catch((e) => setStatus("#session-status", e.message, true)));
  $("#duration-input").addEventListener("change", () => state.session || prepareClock());
  $("#file-input").addEventListener("change", openFile);
  $("#open-btn").addEventListener("click", openSession);
  $("#stop-btn").addEventListener("click", closeSession);
  $("#play-btn").addEventListener("click", togglePlay);
  $("#speed").addEventListener("change", (event) => state.clock?.setRate(Number(event.target.value)));
  $("#seek").addEventListener("change", (event) => seekTo(Number(event.target.value)));
  $("#say-form").addEventListener("submit", say);
  $("#policy").addEventListener("change", () => {
    send({ type: "policy", ...policy() });
  });
  $("#follow-latest").addEventListener("change", (event) => {
    const latest = Math.max(...state.bots.keys());
    if (event.target.checked && state.bots.size) selectBot(latest);
  });
  window.addEventListener("pagehide", () => state.transport?.stop());
  setInterval(tick, TICK_MS);
}

wire();
loadHealth();
loadVideos().catch((error) => setStatus("#session-status", `cannot list videos: ${error.message}`, true));
