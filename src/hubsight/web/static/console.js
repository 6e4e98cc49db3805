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
    cells[4].textContent = h.last_event_time || "—";
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
    const body = { actor: box.dataset.actor, status: f.status.value, assignee: f.assignee.value || null };
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

// ---- page: Settings ----
function settingsPage() {
  $$("input[data-rule]").forEach((box) => box.addEventListener("change", async () => {
    const answer = await api("PUT", `/api/v1/rules/${encodeURIComponent(box.dataset.rule)}/enabled`, { enabled: box.checked });
    if (!answer.ok) { box.checked = !box.checked; alert(problem(answer.data)); }
  }));
  $$("form.tune").forEach((form) => form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    // The rule's settings as its schema types them; a refusal is shown beside its field.
    const msg = $(".form-msg", form), rule = encodeURIComponent(form.dataset.rule);
    const lines = (box) => box.value.split("\n").map((v) => v.trim()).filter(Boolean);
    const thresholds = {}, exceptions = {};
    for (const box of $$("[data-kind]", form)) {
      const v = box.value.trim();
      thresholds[box.name] = box.dataset.kind === "array" ? lines(box) : v === "" || Number.isNaN(Number(v)) ? v : Number(v);
    }
    for (const box of $$("[data-exception]", form)) exceptions[box.name] = lines(box);
    $$(".field-msg[data-for]", form).forEach((m) => show(m, ""));
    // One request: a refused exception keeps the thresholds unchanged too.
    const answer = await api("PUT", `/api/v1/rules/${rule}/tuning`, { thresholds, exceptions });
    const field = answer.ok ? "" : String(answer.data.field ?? "").replace(/^thresholds\./, "");
    const beside = field ? $(`.field-msg[data-for="${CSS.escape(field)}"]`, form) : null;
    if (beside) show(beside, `${answer.data.error.split(": ").slice(-1)[0]}${answer.data.hint ? ` (${answer.data.hint})` : ""}`);
    msg.className = "field-msg form-msg " + (answer.ok ? "ok" : "error");
    msg.textContent = answer.ok ? "saved; applies to the running detection within seconds" : beside ? "not saved: see the field marked" : problem(answer.data);
  }));
  const account = $("#new-account");
  if (account) account.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = account.elements;
    const answer = await api("POST", "/api/v1/accounts", { name: f.name.value.trim(), password: f.password.value, role: f.role.value });
    if (answer.ok) location.reload(); else show($(".error", account), problem(answer.data));
  });
  $$("button[data-account]").forEach((button) => button.addEventListener("click", async () => {
    if (!confirm(`Delete user ${button.dataset.account}? Their sessions and API tokens end now; their saved queries stay, for an admin to reassign or delete.`)) return;
    const answer = await api("DELETE", `/api/v1/accounts/${encodeURIComponent(button.dataset.account)}`);
    if (answer.ok) location.reload(); else alert(problem(answer.data));
  }));
  const token = $("#new-token");
  if (token) token.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const answer = await api("POST", "/api/v1/tokens", { label: token.elements.label.value, days: Number(token.elements.days.value) });
    show($("#token-out"), answer.ok ? `Token (shown once; expires ${answer.data.expires_at}): ${answer.data.token}` : problem(answer.data));
  });
  $$("button[data-revoke-token]").forEach((button) => button.addEventListener("click", async () => {
    if (!confirm(`Revoke the API token ${button.dataset.label} (${button.dataset.revokeToken})? Scripts using it stop at once.`)) return;
    const answer = await api("DELETE", `/api/v1/tokens/${encodeURIComponent(button.dataset.revokeToken)}`);
    if (answer.ok) location.reload(); else alert(problem(answer.data));
  }));
}

function listKeys() {
  // j/k move through the alerts, Enter or o opens the chosen one.
  const rows = $$("#alerts tbody tr").filter((tr) => $("a", tr));
  let at = -1;
  document.addEventListener("keydown", (ev) => {
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName) || !rows.length) return;
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
  if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName)) return;
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
  if (page === "settings") settingsPage();
  fillCharts();
});
