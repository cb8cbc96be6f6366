// devenv's browser view: a snapshot of the environment over Server-Sent
// Events (/api/events), Kafka topics from /api/topics and a topic's live
// tail from /api/tail. Read-only; every text goes in as textContent.
"use strict";

const MAX_TAIL = 100;
let snap = null;
let logs = {};          // service -> lines
let logService = null;  // the service whose logs are shown
let tailTopic = null;
let tailSource = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    // The page's Content-Security-Policy refuses style attributes; the
    // style object (CSSOM) is allowed.
    else if (k === "style") Object.assign(e.style, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function secs(ms) {
  if (ms < 1000) return ms + " ms";
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

function ago(t) {
  if (!t || t.startsWith("0001")) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return new Date(t).toLocaleTimeString();
}

function state(ok, text) {
  return el("span", { class: ok ? "ok" : "bad" }, (ok ? "✓ " : "✗ ") + text);
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function render() {
  if (!snap) return;
  document.getElementById("project").textContent = snap.project || "devenv";
  document.getElementById("namespace").textContent = snap.namespace ? "namespace " + snap.namespace : "";
  document.title = (snap.ready ? "✓ " : "• ") + (snap.project || "devenv") + " · devenv";
  const overall = document.getElementById("overall");
  const checked = snap.checked && !snap.checked.startsWith("0001");
  const st = !checked ? "wait" : snap.ready ? "ready" : "not-ready";
  overall.textContent = !checked ? "starting…" : snap.ready ? "✓ ready" : "✗ not ready";
  overall.className = "badge " + (st === "ready" ? "ok" : st === "wait" ? "wait" : "bad");
  overall.dataset.state = st;
  document.getElementById("checked").textContent = checked ? "checked " + ago(snap.checked) : "";

  fill(document.querySelector("#parts tbody"), snap.parts.map(p =>
    el("tr", { "data-part": p.kind, "data-state": p.ready ? "ready" : "not-ready" },
      el("td", {}, p.kind),
      el("td", { class: "mono" }, p.name || ""),
      el("td", {}, state(p.ready, p.ready ? "ready" : (p.message || "not ready"))),
      el("td", { class: "mono" }, p.address || ""),
      el("td", { class: "mono" }, p.host || ""),
      el("td", { class: "mono" }, p.ip || ""),
      el("td", { class: "mono small" }, p.image || ""))));

  fill(document.querySelector("#services tbody"), snap.services.map(s => {
    const u = s.lastUpdate;
    const image = (u && u.ok && u.image) || s.image || "";
    return el("tr", { "data-service": s.name, "data-state": s.ready ? "ready" : "not-ready", "data-how": u ? u.how : "" },
      el("td", { class: "mono" }, s.name, el("div", { class: "muted small" }, s.address || "")),
      el("td", {}, state(s.ready, s.ready ? `${s.readyPods}/${s.desired} ready` : (s.message || "not ready"))),
      el("td", { class: "mono small" }, image),
      el("td", { class: "last-update" }, u ? [
        el("span", { class: "how how-" + u.how }, u.how), " ",
        u.ok ? secs(u.duration) : el("span", { class: "bad" }, "✗ " + (u.error || "failed")),
        el("div", { class: "muted small" }, ago(u.at)),
      ] : el("span", { class: "muted" }, "—")),
      el("td", { class: "mono small" }, (s.forwards || []).join(" ")),
      el("td", { class: "mono small" }, (s.secrets || []).join(", ")));
  }));

  renderSaves();
  renderTests();
  renderLogTabs();
  const k = document.getElementById("kafka-section");
  if (snap.kafka && k.hidden) { k.hidden = false; loadTopics(); }
}

function renderSaves() {
  const box = document.getElementById("saves");
  const saves = snap.saves.slice().reverse().slice(0, 8);
  if (!saves.length) return;
  box.replaceChildren(...saves.map(s => {
    const total = Math.max(s.duration, ...s.steps.map(x => x.offset + x.duration), 1);
    return el("div", { class: "save", "data-save": s.id, "data-trigger": s.trigger, "data-running": s.running ? "yes" : "no" },
      el("div", { class: "save-head" },
        el("strong", {}, s.trigger === "up" ? "devenv up" : s.trigger === "config" ? "configuration" : "save"),
        el("span", { class: "mono" }, (s.services || []).join(", ")),
        s.running ? el("span", { class: "wait" }, "running… " + secs(s.duration))
          : el("span", { class: s.ok ? "ok" : "bad" }, (s.ok ? "✓ " : "✗ ") + secs(s.duration)),
        el("span", { class: "muted small" }, ago(s.start))),
      s.steps.map(x => el("div", { class: "step" },
        el("span", { class: "mono" }, x.name),
        el("div", { class: "track" }, el("div", {
          class: "bar" + (x.stopped ? " stopped" : x.ok ? "" : " bad"),
          style: { left: (100 * x.offset / total).toFixed(2) + "%", width: (100 * x.duration / total).toFixed(2) + "%" },
        })),
        el("span", { class: "dur" }, secs(x.duration)))));
  }));
}

function renderTests() {
  const sec = document.getElementById("tests-section");
  sec.hidden = !snap.tests.length;
  fill(document.querySelector("#tests tbody"), snap.tests.map(t =>
    el("tr", { "data-test": t.name, "data-status": t.status },
      el("td", { class: "mono" }, t.name),
      el("td", {}, state(t.status === "passed", t.status)),
      el("td", {}, secs(t.duration)),
      el("td", { class: "muted" }, ago(t.at)),
      el("td", { class: "small bad" }, t.error || ""))));
}

function renderLogTabs() {
  const names = snap.services.map(s => s.name);
  if (!logService || !names.includes(logService)) logService = names[0] || null;
  const tabs = document.getElementById("log-tabs");
  const want = names.join("\n") + "\n" + logService;
  if (tabs.dataset.key !== want) {
    tabs.dataset.key = want;
    tabs.replaceChildren(...names.map(n => el("button", {
      class: n === logService ? "on" : "", "data-log": n,
      onclick: () => { logService = n; renderLogTabs(); renderLog(); },
    }, n)));
    renderLog();
  }
}

function renderLog() {
  const pre = document.getElementById("log");
  const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
  pre.textContent = (logs[logService] || []).join("\n");
  if (stick) pre.scrollTop = pre.scrollHeight;
}

function addLogs(batch) {
  for (const [svc, lines] of Object.entries(batch)) {
    const all = (logs[svc] || []).concat(lines);
    logs[svc] = all.slice(-200);
  }
  if (batch[logService]) renderLog();
}

async function loadTopics() {
  try {
    const r = await fetch("api/topics");
    const a = await r.json();
    const err = document.getElementById("topics-error");
    err.hidden = !a.error;
    err.textContent = a.error || "";
    fill(document.querySelector("#topics tbody"), a.topics.map(t =>
      el("tr", { "data-topic": t.name, class: t.name === tailTopic ? "on" : "", onclick: () => follow(t.name) },
        el("td", { class: "mono" }, t.name),
        el("td", {}, t.endOffsets.length),
        el("td", { class: "mono" }, t.endOffsets.join(" ")),
        el("td", { class: "records" }, t.endOffsets.reduce((a, b) => a + Math.max(b, 0), 0)))));
    if (!tailTopic && a.topics.length) follow(a.topics[0].name);
  } catch (e) {
    // the server went away; the event stream reconnects and calls again
  }
}

function follow(topic) {
  if (tailSource) tailSource.close();
  tailTopic = topic;
  document.querySelectorAll("#topics tbody tr").forEach(tr => tr.classList.toggle("on", tr.dataset.topic === topic));
  document.getElementById("tail-title").textContent = "records of " + topic + " (newest first)";
  document.getElementById("tail-error").hidden = true;
  const list = document.getElementById("tail");
  list.replaceChildren();
  list.dataset.topic = topic;
  tailSource = new EventSource("api/tail?topic=" + encodeURIComponent(topic));
  tailSource.addEventListener("record", ev => {
    const r = JSON.parse(ev.data);
    const li = el("li", { class: "fresh", "data-offset": r.offset },
      el("span", { class: "muted" }, `p${r.partition} #${r.offset} `),
      r.key ? el("span", { class: "wait" }, r.key + " ") : null,
      el("span", { class: "mono value" }, r.value + (r.cut ? " …" : "")));
    list.prepend(li);
    while (list.children.length > MAX_TAIL) list.lastChild.remove();
  });
  tailSource.addEventListener("skipped", ev => {
    list.prepend(el("li", { class: "muted" }, JSON.parse(ev.data).skipped + " records skipped"));
  });
  tailSource.addEventListener("error", ev => {
    if (!ev.data) return; // a dropped connection: EventSource reconnects
    const p = document.getElementById("tail-error");
    p.hidden = false;
    p.textContent = JSON.parse(ev.data).error;
    tailSource.close();
  });
}

function connect() {
  const es = new EventSource("api/events");
  es.addEventListener("snapshot", ev => {
    const s = JSON.parse(ev.data);
    if (s.logs) { logs = s.logs; renderLog(); }
    snap = s;
    render();
  });
  es.addEventListener("logs", ev => addLogs(JSON.parse(ev.data)));
  es.onerror = () => {
    const o = document.getElementById("overall");
    o.textContent = "reconnecting…";
    o.className = "badge wait";
    o.dataset.state = "wait";
  };
}

connect();
setInterval(() => { if (snap) render(); }, 5000);          // the "… ago" texts
setInterval(() => { if (snap && snap.kafka) loadTopics(); }, 3000);
