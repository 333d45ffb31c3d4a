// The live page of `soccerkd view`: polls /api/state and swaps a camera's picture only when its
// version changed (and its previous picture has finished loading). Text goes in with
// textContent only: labels and camera ids come from the topics.
"use strict";
const POLL_MS = 1000;
const cards = new Map();

function fmt(x, digits, unit) {
  return x === null || x === undefined ? "–" : x.toFixed(digits) + (unit || "");
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function clock(t) { return new Date(t * 1000).toLocaleTimeString([], { hour12: false }); }   // as on the pictures
function setText(id, text) { document.getElementById(id).textContent = text; }

function card(cam) {
  let c = cards.get(cam.camera_id);
  if (c) return c;
  const root = el("section", "camera");
  root.dataset.camera = cam.camera_id;
  const title = el("h2", null, cam.camera_id);
  const img = el("img");
  img.alt = "latest frame of " + cam.camera_id;
  img.dataset.version = "0";
  const meta = el("div", "muted");
  const table = el("table", "events");
  const head = table.createTHead().insertRow();
  for (const h of ["emitted", "label", "conf", "frames", "latency"]) head.appendChild(el("th", null, h));
  const body = table.createTBody();
  root.append(title, img, meta, table);
  document.getElementById("cameras").appendChild(root);
  c = { img, meta, body, loading: false };
  img.addEventListener("load", () => { c.loading = false; });
  img.addEventListener("error", () => { c.loading = false; });
  cards.set(cam.camera_id, c);
  return c;
}

function showCamera(cam) {
  const c = card(cam);
  if (!c.loading && cam.seq >= 0 && String(cam.version) !== c.img.dataset.version) {
    c.loading = true;
    c.img.dataset.version = String(cam.version);
    c.img.src = "/frame/" + encodeURIComponent(cam.camera_id) + ".jpg?v=" + cam.version;
  }
  c.meta.textContent = cam.seq < 0 ? "no frame yet" :
    `frame ${cam.seq} · ${cam.size[0]}×${cam.size[1]} · captured ${clock(cam.captured_at)} · ` +
    `${fmt(cam.frames_per_s, 1)} frames/s`;
  const rows = cam.events.map((e) => {
    const tr = el("tr", "event");
    tr.dataset.label = e.label;
    tr.dataset.eventId = e.event_id;
    for (const v of [clock(e.emitted_at), e.label, e.confidence.toFixed(2), `${e.start_seq}-${e.end_seq}`,
                     fmt(e.latency_s, 2, " s")]) tr.appendChild(el("td", null, v));
    tr.title = `${e.model_name} @ ${e.checkpoint_sha256}`;
    return tr;
  });
  c.body.replaceChildren(...rows);
}

function showFigures(s) {
  const minute = `last ${s.window_s} s`;
  setText("frames-per-s", fmt(s.frames_per_s, 1));
  setText("frames-source", `frame batches read from topic ${s.frames_topic}, ${minute}`);
  setText("windows-per-s", fmt(s.windows_per_s, 1));
  setText("windows-source", s.windows_source + (s.windows_per_s === null ? "" : `, ${minute}`));
  setText("latency", `${fmt(s.latency_p50_s, 2, " s")} / ${fmt(s.latency_p99_s, 2, " s")}`);
  setText("latency-source", `emitted_at − capture time of the newest frame, ${s.events_last_window} events ` +
          `of topic ${s.events_topic} (read_committed), ${minute}`);
  const current = s.models.find((m) => m.current);
  setText("model", current ? `${current.model_name} @ ${current.checkpoint_sha256.slice(0, 12)}` : "–");
  setText("model-source", s.models.length ?
    "from the events: " + s.models.map((m) => `${m.model_name}@${m.checkpoint_sha256.slice(0, 12)} ` +
                                          `(${m.events} events)`).join(", ") + `, ${minute}` :
    `no event in the ${minute}`);
}

async function poll() {
  try {
    const resp = await fetch("/api/state", { cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const s = await resp.json();
    setText("topics", `topics ${s.frames_topic}, ${s.events_topic}`);
    showFigures(s);
    s.cameras.forEach(showCamera);
    const status = document.getElementById("status");
    status.textContent = `updated ${clock(s.now)}` + (s.unreadable_records ? `, ${s.unreadable_records} unreadable records` : "");
    status.dataset.updated = String(s.now);
  } catch (err) {
    setText("status", "no answer from soccerkd view: " + err.message);
  }
  setTimeout(poll, POLL_MS);
}
poll();
