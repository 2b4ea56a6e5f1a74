// The stage of the live player (player.js): comments fly across it right to left, each in
// the first lane free to take it (the least busy lane when none is), so they do not overlap.
// All move at one speed: a stage's width in FLY_VIDEO_S of video, never in less than
// MIN_FLY_MS of wall time.
"use strict";

const LANE_PX = 30;
const FLY_VIDEO_S = 8;
const MIN_FLY_MS = 3000;
const LANE_GAP_PX = 24; // between a comment's tail and the next one in its lane
const MAX_FLYING = 80; // more at once and the oldest leave early

class DanmakuStage {
  constructor(node) {
    this.node = node; // positioned; its children are the flying comments
    this.flying = new Set(); // {node, animation}
    this.laneFree = []; // performance.now() at which each lane can take the next comment
    this.playing = false;
    this.rate = 1; // the playback rate the comments fly at
  }

  // Stage widths per ms of wall time at playback rate `rate`.
  static speedAt(rate) {
    return 1 / Math.max(MIN_FLY_MS, (FLY_VIDEO_S * 1000) / (rate || 1));
  }

  // A new playback rate: the comments in flight change speed with the new ones.
  setRate(rate) {
    const change = DanmakuStage.speedAt(rate) / DanmakuStage.speedAt(this.rate);
    this.rate = rate;
    const now = performance.now();
    this.laneFree = this.laneFree.map((free) => (free > now ? now + (free - now) / change : free));
    for (const { animation } of this.flying) animation.updatePlaybackRate(animation.playbackRate * change);
  }

  lanes() {
    return Math.max(1, Math.floor(this.node.clientHeight / LANE_PX));
  }

  // Send `node` across; its animation (paused while the stage is).
  fly(node) {
    const count = this.lanes();
    while (this.laneFree.length < count) this.laneFree.push(0);
    const now = performance.now();
    let lane = 0;
    for (let i = 0; i < count; i++) {
      if (this.laneFree[i] <= now) {
        lane = i;
        break;
      }
      if (this.laneFree[i] < this.laneFree[lane]) lane = i;
    }
    node.classList.add("danmaku");
    node.style.top = `${lane * LANE_PX}px`;
    this.node.append(node);
    // one speed for all (px/ms), so that no comment catches up with the one before it
    const speed = this.node.clientWidth * DanmakuStage.speedAt(this.rate);
    const width = node.offsetWidth;
    const distance = this.node.clientWidth + width;
    this.laneFree[lane] = now + (width + LANE_GAP_PX) / speed;
    const animation = node.animate(
      [{ transform: "translateX(0)" }, { transform: `translateX(${-distance}px)` }],
      { duration: distance / speed, easing: "linear", fill: "forwards" },
    );
    const flying = { node, animation };
    this.flying.add(flying);
    animation.onfinish = () => this.land(flying);
    if (!this.playing) animation.pause();
    if (this.flying.size > MAX_FLYING) this.land(this.flying.values().next().value);
    return animation;
  }

  land(flying) {
    flying.animation.cancel();
    flying.node.remove();
    this.flying.delete(flying);
  }

  play() {
    this.playing = true;
    for (const { animation } of this.flying) animation.play();
  }

  pause() {
    this.playing = false;
    for (const { animation } of this.flying) animation.pause();
  }

  clear() {
    for (const flying of [...this.flying]) this.land(flying);
    this.laneFree = [];
  }
}
