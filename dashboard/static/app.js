// PosFleet dashboard: live updates over server-sent events, confirmations on risky buttons.
// Every value from the server is put into the page with textContent, never as HTML.
"use strict";

const MAX_LIVE_ROWS = 20;

function setText(selector, text) {
  document.querySelectorAll(selector).forEach((el) => {
    if (el.textContent !== text) {
      el.textContent = text;
      el.classList.add("changed");
      setTimeout(() => el.classList.remove("changed"), 1500);
    }
  });
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function addEvents(events) {
  document.querySelectorAll("[data-live-events]").forEach((body) => {
    const empty = body.querySelector("tr.empty");
    if (empty && events.length) empty.remove();
    events.forEach((e) => {
      const tr = document.createElement("tr");
      tr.className = "live-new";
      const where = cell("");
      const link = document.createElement("a");
      link.href = "/terminals/" + encodeURIComponent(e.endpoint);
      link.textContent = e.endpoint;
      where.append(link);
      tr.append(cell(e.time), where, cell(e.kind), cell(e.amount, "num"));
      body.prepend(tr);
    });
    while (body.rows.length > MAX_LIVE_ROWS) body.deleteRow(body.rows.length - 1);
  });
}

function applyUpdate(data) {
  if (data.counts) {
    Object.entries(data.counts).forEach(([state, n]) => setText(`[data-count="${state}"]`, n));
  }
  (data.states || []).forEach((t) => {
    document.querySelectorAll(`[data-state-of="${CSS.escape(t.endpoint)}"]`).forEach((el) => {
      const badge = document.createElement("span");
      badge.className = `state state-${t.state}`;
      badge.textContent = t.label;
      el.replaceChildren(badge);
    });
  });
  if (data.last_seen) setText("[data-last-seen]", data.last_seen);
  (data.values || []).forEach((v) => setText(`[data-path="${CSS.escape(v.path)}"]`, v.value));
  (data.licences || []).forEach((l) => setText(`[data-licence-report="${CSS.escape(l.uid)}"]`, l.reported));
  if (data.events && data.events.length) addEvents(data.events);
}

function connect() {
  const url = document.body.dataset.live;
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener("update", (message) => {
    try {
      applyUpdate(JSON.parse(message.data));
      document.body.classList.add("live-ok");
    } catch (err) {
      console.error("bad live update", err);
    }
  });
  source.onerror = () => document.body.classList.remove("live-ok");
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", connect);
