// The web inspector: plain JavaScript over the inspection API, no build step.
// Pick a video, scrub its comment timeline, see the window's recalled facts and other-video
// comments (GET /recall), generate comments at t (POST /generate), and inspect entities.
// Every text from the API goes into the page as text (textContent), never as HTML. The
// helpers ($, api, el, clock, setStatus) are common.js's.
"use strict";

const COMMENT_PAGE = 1000;
const MAX_COMMENT_PAGES = 20; // density of at most 20,000 comments per video
const ENTITY_FACTS_PAGE = 20;

const state = {
  videos: new Map(),
  video: null,
  t: 0,
  times: [], // comment seconds of the chosen video, for the density strip
  windowSeq: 0,
  entity: null,
  entityOffset: 0,
};

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function entityLink(name) {
  return el("a", {
    className: "entity-link",
    href: "#",
    textContent: name,
    title: "show this entity",
    onclick: (event) => {
      event.preventDefault();
      showEntity(name);
    },
  });
}

// -- health ------------------------------------------------------------------------------

async function loadHealth() {
  const box = $("#health");
  box.replaceChildren();
  let health;
  try {
    const response = await fetch("/health");
    health = await response.json();
  } catch (error) {
    box.append(el("span", { className: "chip bad", textContent: `API unreachable: ${error}` }));
    return;
  }
  for (const part of ["store", "index", "model"]) {
    const { ok, detail } = health[part];
    box.append(el("span", { className: `chip ${ok ? "ok" : "bad"}`, title: detail, textContent: `${part} ${ok ? "✓" : "✗"}` }));
  }
}

// -- videos and the timeline -----------------------------------------------------------

async function loadVideos() {
  const select = $("#video-select");
  let offset = 0;
  while (offset !== null) {
    const page = await api(`/videos?limit=500&offset=${offset}`);
    for (const v of page.items) state.videos.set(v.id, v);
    offset = page.next_offset;
  }
  select.replaceChildren(
    ...[...state.videos.values()].map((v) =>
      el("option", { value: v.id, textContent: `${v.id} · ${v.title}${v.splits.length ? ` (${v.splits.join(", ")})` : ""}` }),
    ),
  );
  const wanted = new URLSearchParams(location.hash.slice(1));
  const first = state.videos.has(wanted.get("video")) ? wanted.get("video") : select.value;
  if (first) await selectVideo(first, Number(wanted.get("t") || 60));
}

async function selectVideo(id, t) {
  const video = state.videos.get(id);
  if (!video) return;
  state.video = video;
  $("#video-select").value = id;
  $("#video-info").textContent = `${clock(video.duration_s)} · ${video.comments} comments`;
  const slider = $("#t-slider");
  slider.max = String(Math.floor(video.duration_s));
  setT(Math.min(t, Math.floor(video.duration_s)));
  await Promise.all([loadKeywords(video.id), loadDensity(video.id)]);
}

async function loadKeywords(id) {
  const keywords = await api(`/videos/${enc(id)}/keywords?limit=20`);
  if (state.video?.id !== id) return; // another video was chosen meanwhile
  const chips = keywords.map((k) => {
    const title = `TF-IDF ${k.score.toFixed(3)}${k.entity ? ` · ${k.entity}` : ""}`;
    const chip = el("span", { className: `chip${k.entity ? " entity" : ""}`, textContent: k.word, title });
    if (k.entity) chip.onclick = () => showEntity(k.entity);
    return chip;
  });
  $("#keywords").replaceChildren(...chips);
}

async function loadDensity(id) {
  const times = [];
  let offset = 0;
  for (let i = 0; i < MAX_COMMENT_PAGES && offset !== null; i++) {
    const page = await api(`/videos/${enc(id)}/comments?limit=${COMMENT_PAGE}&offset=${offset}`);
    if (state.video?.id !== id) return; // another video was chosen meanwhile
    for (const c of page.items) times.push(c.time_s);
    offset = page.next_offset;
  }
  state.times = times;
  drawDensity();
}

function drawDensity() {
  const canvas = $("#density");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.floor(canvas.clientWidth * ratio));
  canvas.height = Math.floor(48 * ratio);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.video) return;
  const duration = Math.max(1, state.video.duration_s);
  const buckets = Math.max(1, Math.floor(canvas.width / (3 * ratio)));
  const counts = new Array(buckets).fill(0);
  for (const time of state.times) counts[Math.min(buckets - 1, Math.floor((time / duration) * buckets))]++;
  const most = Math.max(1, ...counts);
  const width = canvas.width / buckets;
  ctx.fillStyle = "#9db7e8";
  counts.forEach((n, i) => {
    const h = (n / most) * (canvas.height - 4);
    ctx.fillRect(i * width, canvas.height - h, Math.max(1, width - ratio), h);
  });
  ctx.fillStyle = "#d92d20";
  ctx.fillRect((state.t / duration) * canvas.width - ratio, 0, 2 * ratio, canvas.height);
}

function setT(t) {
  if (!state.video) return;
  const max = Math.floor(state.video.duration_s);
  state.t = Math.max(0, Math.min(max, Math.round(t)));
  $("#t-slider").value = String(state.t);
  $("#t-label").textContent = `t = ${clock(state.t)} (${state.t} s)`;
  history.replaceState(null, "", `#video=${enc(state.video.id)}&t=${state.t}`);
  drawDensity();
  refreshWindow();
}

const refreshWindow = debounce(async () => {
  const seq = ++state.windowSeq;
  const { id } = state.video;
  const t = state.t;
  setStatus("#recall-status", "recalling…");
  try {
    const [recall, comments] = await Promise.all([
      api(`/recall?video=${enc(id)}&t=${t}`),
      api(`/videos/${enc(id)}/comments?start=${Math.max(0, t - 5)}&end=${t + 6}&limit=200`),
    ]);
    if (seq !== state.windowSeq) return; // a newer window is on its way
    $("#window-label").textContent = `window [${recall.window[0]}, ${recall.window[1]}] s`;
    renderWindowComments(comments.items, t);
    renderFacts(recall.facts);
    renderOtherComments(recall.comments);
    setStatus("#recall-status", `${recall.facts.length} facts, ${recall.comments.length} comments of other videos for ${id} at ${clock(t)}`);
  } catch (error) {
    if (seq === state.windowSeq) setStatus("#recall-status", error.message, true);
  }
}, 120);

function renderWindowComments(items, t) {
  $("#window-comments").replaceChildren(
    ...items.map((c) =>
      el(
        "li",
        { className: Math.floor(c.time_s) === t ? "target" : "" },
        el("span", { className: "time", textContent: clock(c.time_s) }),
        c.text,
        c.knowledge ? el("span", { className: "knowledge-flag", textContent: "KG", title: "states a KG fact" }) : "",
      ),
    ),
  );
}

function renderFacts(facts) {
  $("#facts tbody").replaceChildren(
    ...facts.map((f) =>
      el(
        "tr",
        { className: "fact", dataset: { head: f.head } },
        el("td", {}, entityLink(f.head)),
        el("td", { textContent: f.relation }),
        el("td", {}, entityLink(f.tail)),
        el("td", {
          className: "why",
          textContent: `“${f.why.keyword}” → ${f.why.entity} · hop ${f.why.hop} · ${f.why.score.toFixed(2)}`,
        }),
      ),
    ),
  );
}

function renderOtherComments(comments) {
  $("#other-comments").replaceChildren(
    ...comments.map((c) =>
      el(
        "li",
        {},
        c.text,
        " ",
        el("a", {
          className: "entity-link",
          href: "#",
          textContent: `(${c.video} @ ${clock(c.t)}, ${c.score.toFixed(2)})`,
          title: "open that video at this time",
          onclick: (event) => {
            event.preventDefault();
            selectVideo(c.video, c.t);
          },
        }),
      ),
    ),
  );
}

// -- generation --------------------------------------------------------------------------

async function generate() {
  if (!state.video) return;
  const beam = Number($("#beam").value) || 5;
  const headers = { "Content-Type": "application/json" };
  const key = $("#api-key").value;
  if (key) headers["X-API-Key"] = key;
  setStatus("#generate-status", `generating at ${clock(state.t)}…`);
  $("#generated").replaceChildren();
  $("#attended tbody").replaceChildren();
  $("#attended").hidden = true;
  try {
    const out = await api("/generate", {
      method: "POST",
      headers,
      body: JSON.stringify({ video: state.video.id, t: state.t, beam }),
    });
    // a comment's copied word names its fact by index in recall order (facts[].index)
    const byIndex = new Map(out.facts.map((f) => [f.index, f]));
    const factLabel = (i) => {
      const f = byIndex.get(i);
      return f ? `${f.head} ${f.relation} ${f.tail}` : `fact ${i}`;
    };
    $("#generated").replaceChildren(
      ...out.comments.map((c) => {
        const words = c.words
          ? c.words.map((w) =>
              w.copied >= 0.5
                ? el("mark", {
                    className: w.fact === null ? "copied from-comment" : "copied",
                    textContent: w.text,
                    title: `${Math.round(w.copied * 100)}% copied from ${w.fact === null ? "the window's comments" : factLabel(w.fact)}`,
                  })
                : w.text,
            )
          : [c.text];
        const copied = c.copied === null || c.copied === undefined ? "" : `, ${Math.round(c.copied * 100)}% copied`;
        return el("li", {}, ...words, el("span", { className: "time", textContent: `  ${c.score.toFixed(3)}${copied}` }));
      }),
    );
    $("#attended thead th:first-child").textContent = out.facts_by === "copy" ? "fact (copied into the best comment)" : "attended fact";
    $("#attended thead th:last-child").textContent = out.facts_by === "copy" ? "copy mass" : "attention";
    const most = Math.max(1e-9, ...out.facts.map((f) => f.weight));
    $("#attended tbody").replaceChildren(
      ...out.facts.map((f) =>
        el(
          "tr",
          { className: out.facts_by === "copy" && f.weight > 0 ? "used" : "" },
          el("td", {}, entityLink(f.head), ` ${f.relation} ${f.tail}`),
          el("td", {}, el("span", { className: "bar", style: `width:${Math.round((f.weight / most) * 80)}px` }), f.weight.toFixed(3)),
        ),
      ),
    );
    $("#attended").hidden = out.facts.length === 0;
    setStatus("#generate-status", `${out.comments.length} comments for ${out.video} at ${clock(out.t)}`);
  } catch (error) {
    setStatus("#generate-status", `${error.status || ""} ${error.message}`, true);
  }
}

// -- entities ----------------------------------------------------------------------------

const searchEntities = debounce(async (prefix) => {
  const list = $("#entity-results");
  if (!prefix) {
    list.replaceChildren();
    return;
  }
  try {
    const page = await api(`/entities?prefix=${enc(prefix)}&limit=20`);
    list.replaceChildren(...page.items.map((name) => el("li", {}, entityLink(name))));
  } catch (error) {
    list.replaceChildren(el("li", { className: "error", textContent: error.message }));
  }
}, 200);

async function showEntity(name) {
  setStatus("#entity-status", `looking up ${name}…`);
  try {
    const entity = await api(`/entities/${enc(name)}`);
    state.entity = entity.entity;
    state.entityOffset = 0;
    $("#entity-name").textContent = entity.entity;
    $("#entity-aliases").textContent = entity.aliases.length ? `aliases: ${entity.aliases.join("、")}` : "no aliases";
    $("#entity-facts tbody").replaceChildren();
    $("#entity-detail").hidden = false;
    setStatus("#entity-status", "");
    await Promise.all([moreEntityFacts(), loadNeighbors()]);
  } catch (error) {
    const text = error.status === 404 ? `“${name}” is not an entity of the knowledge graph` : error.message;
    setStatus("#entity-status", text, error.status !== 404);
  }
}

async function moreEntityFacts() {
  const name = state.entity;
  const page = await api(`/entities/${enc(name)}/facts?limit=${ENTITY_FACTS_PAGE}&offset=${state.entityOffset}`);
  if (name !== state.entity) return;
  $("#entity-facts tbody").append(
    ...page.items.map((f) => el("tr", { className: "entity-fact" }, el("td", { textContent: f.relation }), el("td", {}, entityLink(f.tail)))),
  );
  state.entityOffset = page.next_offset ?? state.entityOffset;
  $("#entity-more").hidden = page.next_offset === null;
}

async function loadNeighbors() {
  const name = state.entity;
  const hops = $("#hops").value;
  const out = await api(`/entities/${enc(name)}/neighbors?hops=${hops}&limit=100`);
  if (name !== state.entity) return;
  $("#entity-neighbors").replaceChildren(
    ...out.items.map((f) => el("li", { className: "neighbor" }, entityLink(f.head), ` ${f.relation} `, entityLink(f.tail))),
    ...(out.truncated ? [el("li", { className: "muted", textContent: `first ${out.limit} shown` })] : []),
  );
}

// -- wiring ------------------------------------------------------------------------------

function wire() {
  $("#video-select").addEventListener("change", (event) =>
    selectVideo(event.target.value, state.t).catch((e) => setStatus("#recall-status", e.message, true)),
  );
  $("#t-slider").addEventListener("input", (event) => setT(Number(event.target.value)));
  $("#t-back").addEventListener("click", () => setT(state.t - 1));
  $("#t-forward").addEventListener("click", () => setT(state.t + 1));
  $("#density").addEventListener("click", (event) => {
    if (!state.video) return;
    const box = event.currentTarget.getBoundingClientRect();
    setT(((event.clientX - box.left) / box.width) * state.video.duration_s);
  });
  $("#generate-btn").addEventListener("click", generate);
  $("#entity-search").addEventListener("input", (event) => searchEntities(event.target.value.trim()));
  $("#entity-more").addEventListener("click", () => moreEntityFacts().catch((e) => setStatus("#entity-status", e.message, true)));
  $("#hops").addEventListener("change", () => loadNeighbors().catch((e) => setStatus("#entity-status", e.message, true)));
  window.addEventListener("resize", debounce(drawDensity, 100));
}

wire();
loadHealth();
loadVideos().catch((error) => setStatus("#recall-status", `cannot list videos: ${error.message}`, true));
