// The live danmaku player's page: plain JavaScript over the live endpoint, no build step.
// Choose a corpus video (its own viewer comments are replayed) or name a film for an ad hoc
// session, press play: a clock runs at the chosen speed (a timeline, or a local video file
// when one is opened: live.js), viewers' comments fly across the stage (stage.js) as they
// come due and go to the live session (live.js) with their times, with the playback position
// every POSITION_MS; the bot's comments fly back highlighted, and the knowledge panel
// (knowledge.js) shows the facts each one used.
"use strict";

const COMMENT_PAGE = 1000;
const MAX_COMMENT_PAGES = 20; // replay at most 20,000 comments of a video
const TICK_MS = 100; // the clock, the due comments and the stage are updated this often
const POSITION_MS = 250; // a `position` message this often (wall time) while playing
const STATS_MS = 2000; // a `stats` request this often while a session is open

const state = {
  videos: new Map(),
  video: null, // the chosen corpus video's summary, or null for an ad hoc session
  comments: [], // the corpus video's comments in time order: {time_s, text}
  next: 0, // index of the next comment to come due
  clock: null,
  lastT: 0,
  lastPositionAt: 0,
  transport: null,
  opening: null, // the promise of the session being opened
  stopping: null, // the transport the Stop button ended, until the server has closed it
  session: null,
  sent: 0,
  panel: null, // the KnowledgePanel (knowledge.js): the bot's comments and their facts
  stage: null, // the DanmakuStage (stage.js)
  fileUrl: null,
  dragging: false, // the seek slider is being dragged
  flown: { viewer: 0, bot: 0, mine: 0 },
};

function showError(text) {
  const list = $("#errors");
  list.append(el("li", { className: "error", textContent: `${clock(state.lastT)} ${text}` }));
  while (list.children.length > 20) list.firstElementChild.remove();
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
  $("#stage").dataset.clock = state.fileUrl ? "video" : "timeline";
  state.stage.clear();
  state.stage.setRate(Number($("#speed").value));
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

// The session's knobs as the server has them.
function showPolicy(knobs) {
  for (const input of document.querySelectorAll("#policy [data-knob]")) {
    const value = knobs?.[input.dataset.knob];
    if (value === undefined) continue;
    if (input.type === "checkbox") input.checked = Boolean(value);
    else input.value = value === null ? "" : String(value);
  }
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
  const kind = $("#transport").value;
  let { transport, session: s, error } = await connect(kind === "sse" ? SseTransport : WsTransport, start);
  if (error?.status === 1006 && kind === "auto" && transport === state.transport) {
    // no WebSocket got through (a proxy, say): the same session over HTTP
    ({ transport, session: s, error } = await connect(SseTransport, start));
  }
  if (state.transport !== transport) {
    transport.stop(); // another choice was made meanwhile
    return false;
  }
  if (error) {
    state.transport = null;
    setStatus("#session-status", `no session: ${error.message}`, true);
    return false;
  }
  state.session = s;
  state.panel.clear(); // a new session counts its comments from 1
  showPolicy(s.policy);
  $("#session-status").dataset.transport = transport instanceof SseTransport ? "sse" : "ws";
  $("#stage-title").textContent = s.title;
  const length = s.duration_s === null ? "no end" : clock(s.duration_s);
  setStatus("#session-status", `session ${s.session} · ${state.video ? s.video : "ad hoc"} · ${s.title} · ${length}`);
  $("#stop-btn").disabled = false;
  $("#say-input").disabled = $("#say-btn").disabled = false;
  sendPosition();
  state.statsTimer = setInterval(() => state.transport?.send({ type: "stats" }), STATS_MS);
  return true;
}

// A transport of class `Transport` made the current one and opened: {transport, session}
// or {transport, error}.
async function connect(Transport, start) {
  const transport = new Transport($("#api-key").value, {
    message: (message) => onServerMessage(transport, message),
    close: (code, text) => onSessionClosed(transport, code, text),
    error: showError,
  });
  state.transport = transport;
  setStatus("#session-status", `opening a live session (${transport instanceof SseTransport ? "HTTP and events" : "WebSocket"})…`);
  try {
    return { transport, session: await transport.open(start) };
  } catch (error) {
    return { transport, error };
  }
}

// Ends the session, if one is open (its final stats still come); the transport that was it.
function closeSession() {
  clearInterval(state.statsTimer);
  if (state.clock?.playing) togglePlay();
  const transport = state.transport;
  state.transport = null;
  state.session = null;
  state.stopping = null;
  transport?.stop();
  $("#stop-btn").disabled = true;
  $("#say-input").disabled = $("#say-btn").disabled = true;
  return transport;
}

// The Stop button: the session ends, and the page says so once the server has ended it.
function stopSession() {
  state.stopping = closeSession();
  if (state.stopping) setStatus("#session-status", "stopping the session…");
}

function onSessionClosed(transport, code, text) {
  if (transport === state.stopping && state.transport === null) {
    state.stopping = null;
    setStatus("#session-status", `session ended: ${text}`, code !== 1000);
  }
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
  else if (message.type === "policy") showPolicy(message.policy);
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
  state.panel.add(message);
  fly(message.text, "bot", message.seq);
}

// -- the stage ---------------------------------------------------------------------------

// A comment of a viewer, of this page's user ("mine") or of the bot flies across the stage.
function fly(text, kind, seq = null) {
  if (kind === "viewer" && !$("#show-viewers").checked) return;
  const node = el("div", { className: kind, dataset: { kind } });
  if (kind !== "bot") node.textContent = text;
  else {
    node.append(el("span", { className: "badge", textContent: "bot" }), text);
    Object.assign(node, { tabIndex: 0, title: "show the facts it used" });
    node.dataset.seq = String(seq);
  }
  const animation = state.stage.fly(node);
  if (kind === "bot") {
    // hovered, it stops and shows its facts; clicked, its facts stay
    node.addEventListener("mouseenter", () => {
      animation.pause();
      state.panel.select(seq);
    });
    node.addEventListener("mouseleave", () => state.stage.playing && animation.play());
    node.addEventListener("focus", () => state.panel.select(seq));
    node.addEventListener("click", () => state.panel.select(seq, true));
  }
  state.flown[kind]++;
  $("#stage").dataset[`flown${kind[0].toUpperCase()}${kind.slice(1)}`] = String(state.flown[kind]);
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
    state.stage.pause();
    if (state.session) {
      sendPosition();
      send({ type: "stats" });
    }
  } else {
    await openSession(); // without a session the viewers' comments still play
    if (c !== state.clock || c.playing) return; // another choice, or another press, meanwhile
    if (c.now() >= c.duration) seekTo(0);
    c.play()?.catch((error) => showError(`the video does not play: ${error.message}`));
    state.stage.play();
  }
  render();
}

function seekTo(t) {
  if (!state.clock) return;
  state.clock.seek(t);
  state.lastT = state.clock.now();
  state.next = firstDue(state.lastT);
  state.stage.clear();
  if (state.session) sendPosition();
  render();
}

// Every TICK_MS: the comments that came due fly and go to the session, the position goes
// out every POSITION_MS, the end of the video pauses.
function tick() {
  const c = state.clock;
  if (!c) return;
  const t = c.now();
  if (c instanceof VideoClock && (t < state.lastT - 1 || t > state.lastT + 10)) {
    state.next = firstDue(t); // the video jumped by itself (a timeline only jumps in seekTo)
    state.stage.clear();
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
  if (!state.dragging) $("#seek").value = String(Math.floor(t));
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
  state.stage = new DanmakuStage($("#lanes"));
  state.panel = new KnowledgePanel();
  $("#video-select").addEventListener("change", () => chooseVideo().catch((e) => setStatus("#session-status", e.message, true)));
  $("#duration-input").addEventListener("change", () => state.session || prepareClock());
  $("#file-input").addEventListener("change", openFile);
  $("#open-btn").addEventListener("click", openSession);
  $("#stop-btn").addEventListener("click", stopSession);
  $("#play-btn").addEventListener("click", togglePlay);
  $("#speed").addEventListener("change", (event) => {
    state.clock?.setRate(Number(event.target.value));
    state.stage.setRate(Number(event.target.value));
  });
  $("#seek").addEventListener("input", () => {
    state.dragging = true; // the slider follows the hand, not the clock, until let go
  });
  $("#seek").addEventListener("change", (event) => {
    state.dragging = false;
    seekTo(Number(event.target.value));
  });
  $("#say-form").addEventListener("submit", say);
  $("#policy").addEventListener("change", () => send({ type: "policy", ...policy() }));
  window.addEventListener("pagehide", () => state.transport?.stop());
  setInterval(tick, TICK_MS);
}

wire();
loadHealth();
loadVideos().catch((error) => setStatus("#session-status", `cannot list videos: ${error.message}`, true));
