// The knowledge panel of the live player (player.js): the bot's comments of the session, the
// latest first, and the one chosen (the latest while "follow the latest" is ticked; else the
// one clicked) with the facts it used: head, relation, tail and mass (copy mass, or the
// knowledge encoder's attention for a model without a copy path), its score, copied share
// and latency.
"use strict";

class KnowledgePanel {
  constructor() {
    this.bots = new Map(); // seq -> the server's `comment` message
    $("#follow-latest").addEventListener("change", (event) => {
      if (event.target.checked && this.bots.size) this.select(Math.max(...this.bots.keys()));
    });
  }

  add(message) {
    this.bots.set(message.seq, message);
    const facts = (message.facts || []).length;
    const item = el(
      "li",
      { dataset: { seq: String(message.seq) }, tabIndex: 0, title: "show its facts" },
      el("span", { className: "time", textContent: clock(message.t) }),
      message.text,
      el("span", { className: "muted", textContent: `  ${facts} facts` }),
    );
    item.value = message.seq; // numbered by seq, the latest on top
    item.addEventListener("click", () => this.select(message.seq, true));
    item.addEventListener("keydown", (event) => event.key === "Enter" && this.select(message.seq, true));
    $("#bot-history").prepend(item);
    if ($("#follow-latest").checked) this.select(message.seq);
    $("#knowledge-status").textContent = `${this.bots.size} bot comments so far`;
  }

  // Show a bot comment and its facts; `pin` stops following the latest.
  select(seq, pin = false) {
    const message = this.bots.get(seq);
    if (!message) return;
    if (pin) $("#follow-latest").checked = false;
    for (const li of document.querySelectorAll("#bot-history li")) {
      li.classList.toggle("selected", li.dataset.seq === String(seq));
    }
    const detail = $("#bot-detail");
    detail.hidden = false;
    detail.dataset.seq = String(seq);
    $("#bot-text").textContent = message.text;
    $("#bot-meta").textContent = describe(message);
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
  }

  clear() {
    this.bots.clear();
    $("#bot-history").replaceChildren();
    $("#bot-detail").hidden = true;
    $("#knowledge-status").textContent = "bot comments and their facts appear here";
  }
}

function describe(message) {
  const parts = [`#${message.seq} at ${clock(message.t)} (${message.t} s)`, `on ${message.trigger}`];
  if (typeof message.score === "number") parts.push(`score ${message.score.toFixed(3)}`);
  if (typeof message.copied === "number") parts.push(`${Math.round(message.copied * 100)}% copied`);
  if (typeof message.latency_ms === "number") parts.push(`${Math.round(message.latency_ms)} ms`);
  return parts.join(" · ");
}
