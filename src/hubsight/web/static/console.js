// hubsight console: small vanilla helpers over the REST API. No framework, no build step.
"use strict";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const csrf = () => $('meta[name="csrf-token"]').content;
// A value as a LEQL string literal: the one way the console writes values into queries (the
// server's hubsight.query.parser.leql_string does the same).
const leqlString = (value) => `"${String(value).replace(/["\\]/g, "\\$&")}"`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(method, url, body) {
  const headers = { "X-CSRF-Token": csrf() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    // Server gone or the page is leaving: every caller already shows a failed answer.
    return { status: 0, ok: false, data: { error: "hubsight did not answer", hint: "check that `hubsight run` is running, then retry" } };
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  // The session ended (idle or too old): the login page says why and brings the user back.
  if (response.status === 401 && !url.startsWith("/logout")) {
    location.href = `/login?next=${encodeURIComponent(location.pathname)}${data && data.expired ? "&expired=" + data.expired : ""}`;
  }
  return { status: response.status, ok: response.ok, data };
}

function problem(data) {
  if (!data) return "no answer";
  const parts = [data.error || "failed"];
  if (data.problems) parts.push(data.problems.map((p) => `${p.loc.join(".")}: ${p.msg}`).join("; "));
  if (data.hint) parts.push(`hint: ${data.hint}`);
  return parts.join("\n");
}

// Times are shown in the viewer's zone; the exact ISO time stays on hover.
const LOCAL_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
function localTime(node, iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return;
  node.title = iso;
  node.textContent = LOCAL_TIME.format(when);
}

function show(node, message) { node.textContent = message; node.hidden = !message; }

// Relative ranges and timeslice buckets follow the analyst's own time zone.
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

async function runSearch(body) {
  let answer = await api("POST", "/api/v1/search", body);
  while (answer.status === 202) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    answer = await api("GET", `/api/v1/search/${answer.data.id}`);
  }
  return answer;
}

// ---- page: any page with .chart[data-query] (dashboard, user) ----
async function fillCharts() {
  for (const box of $$(".chart[data-query]")) {
    const answer = await runSearch({ query: box.dataset.query, last: box.dataset.last || "24h", timezone: ZONE });
    if (!answer.ok) { box.append(el("p", { class: "error", text: problem(answer.data) })); continue; }
    // Brushing a time range opens Log Search on it.
    const onZoom = (from, to) => { location.href = `/search?${new URLSearchParams({ q: box.dataset.query, from, to, run: "1" })}`; };
    const chart = chartFor(answer.data, "bar", { onZoom });
    box.append(chart || el("p", { class: "muted", text: "No data." }));
  }
}

async function refreshSources() {
  const answer = await api("GET", "/api/v1/event-sources");
  if (!answer.ok) return;
  for (const s of answer.data) {
    const row = $(`tr[data-source="${CSS.escape(s.name)}"]`);
    if (!row) continue;
    const h = s.health, cells = row.children;
    cells[1].replaceChildren(el("span", { class: `state state-${h.state.replaceAll(" ", "-")}`, text: h.state }));
    $("span", cells[2]).textContent = h.events_per_minute;
    sparkline($(".spark", cells[2]), h.events_per_minute_history);
    cells[3].textContent = h.events_stored;
    const last = h.last_event_time ? el("time", { datetime: h.last_event_time }) : "—";
    if (h.last_event_time) localTime(last, h.last_event_time);
    cells[4].replaceChildren(last);
    cells[5].textContent = h.lag.length ? h.lag.reduce((n, p) => n + (p.lag || 0), 0) : "—";
    cells[6].replaceChildren(...(h.last_error ? [el("span", { class: "error", text: h.last_error })] : []),
      ...(h.hint ? [el("div", { class: "hint", text: h.hint })] : []), ...(!h.last_error && !h.hint ? ["—"] : []));
  }
}

// ---- page: one alert ----
function alertPage() {
  const box = $("#alert"), form = $("#triage");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    const body = { actor: box.dataset.actor, status: f.status.value, assignee: f.assignee.value };
    if (f.disposition.value) body.disposition = f.disposition.value;
    if (f.comment.value.trim()) body.comment = f.comment.value.trim();
    const answer = await api("PATCH", `/api/v1/alerts/${box.dataset.id}`, body);
    if (answer.ok) location.reload(); else show($("#triage-error"), problem(answer.data));
  });
}

function rawRecords() {
  // "Raw record" buttons of evidence rows open the stored event in the row below.
  $$("button[data-context]").forEach((button) => button.addEventListener("click", async () => {
    const row = button.closest("tr").nextElementSibling;
    if (!row.hidden) { row.hidden = true; return; }
    const answer = await api("GET", button.dataset.context + "?before=0&after=0");
    $("pre", row).textContent = JSON.stringify(answer.ok ? answer.data.event ?? answer.data : answer.data, null, 2);
    row.hidden = false;
  }));
}

// Keys are the user's text while a field has the focus, not shortcuts.
const typing = () => /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);

function listKeys() {
  // j/k move through the alerts, Enter or o opens the chosen one.
  const rows = $$("#alerts tbody tr").filter((tr) => $("a", tr));
  let at = -1;
  document.addEventListener("keydown", (ev) => {
    if (typing() || !rows.length) return;
    if (ev.key === "j" || ev.key === "k") {
      if (at >= 0) rows[at].classList.remove("cur");
      at = Math.max(0, Math.min(rows.length - 1, at + (ev.key === "j" ? 1 : -1)));
      rows[at].classList.add("cur");
      rows[at].scrollIntoView({ block: "nearest" });
    } else if ((ev.key === "Enter" || ev.key === "o") && at >= 0) location.href = $("a", rows[at]).href;
  });
}

document.addEventListener("keydown", (ev) => {
  // "/" jumps to the query box (or to Log Search) unless the user is typing somewhere.
  if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || typing()) return;
  ev.preventDefault();
  const box = $("#leql");
  if (box) box.focus(); else location.href = "/search";
});

function checklist() {
  // The Azure checklist remembers its ticks in this browser.
  $$(".checklist input[type=checkbox]").forEach((box, i) => {
    const key = `hubsight.checklist.${i}`;
    box.checked = localStorage.getItem(key) === "1";
    box.addEventListener("change", () => localStorage.setItem(key, box.checked ? "1" : "0"));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const logout = $("#logout");
  if (logout) logout.addEventListener("click", async () => { await api("POST", "/logout"); location.href = "/login"; });
  $$("time[datetime]").forEach((node) => localTime(node, node.getAttribute("datetime")));
  const page = document.body.dataset.page;
  if (page === "sources") { sourcesPage(); checklist(); refreshSources(); setInterval(refreshSources, 2000); }
  if (page === "dashboard") { refreshSources(); setInterval(refreshSources, 5000); }
  if (page === "alert") alertPage();
  rawRecords();
  if (page === "alerts") listKeys();
  fillCharts();
});
