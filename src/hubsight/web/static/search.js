// Log Search: scope, query, results, histogram and charts (uses console.js and charts.js).
"use strict";

// A time as a datetime-local input wants it: the viewer's zone, no offset, to the second.
function localInput(iso) {
  // The local wall-clock time written as if it were UTC, so toISOString spells it out.
  const d = new Date(iso);
  return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
}

// Fields shown as pills in the Summary column, in this order, when an event has them.
const SUMMARY_KEYS = ["operation", "application", "geoip_country_code", "geoip_city", "error_code", "failure_reason",
  "mfa_method", "target_user", "target_resource", "resource_id", "alert_name", "severity", "category"];

// ---- page: Log Search ----
function searchPage() {
  const form = $("#search");
  const results = $("#results"), rowsTable = $("#rows"), qerror = $("#qerror");
  let cursor = null;
  const last = form.elements.last;
  const query = form.elements.query;
  const rawPaths = [];
  const editor = leqlEditor(query, JSON.parse(query.dataset.keys), rawPaths);
  const repaint = editor.paint;
  leqlRawPaths(form, rawPaths, editor.refresh);
  last.addEventListener("change", () => { $(".abs", form).hidden = last.value !== ""; });

  function scope() {
    const picked = (name) => $$(`input[name="${name}"]:checked`, form).map((box) => box.value);
    const body = { query: query.value, log_sets: picked("log_sets"), log_names: picked("log_names"), timezone: ZONE };
    if (last.value) body.last = last.value;
    else {
      if (form.elements.from.value) body.from = new Date(form.elements.from.value).toISOString();
      if (form.elements.to.value) body.to = new Date(form.elements.to.value).toISOString();
    }
    return body;
  }

  function addToQuery(key, value) {
    const term = `${key}=${leqlString(value)}`;
    const match = query.value.match(/^\s*where\((.*)\)(.*)$/s);
    query.value = match ? `where(${match[1]} AND ${term})${match[2]}` : `where(${term}) ${query.value.trim()}`.trim();
    repaint();
    query.focus();
  }

  function eventRows(events, append) {
    if (!append) {
      rowsTable.replaceChildren(el("thead", {}, el("tr", {}, ...["Time", "Log", "User", "Result", "Source IP", "Summary"].map((h) => el("th", { text: h })))));
      rowsTable.append(el("tbody"));
    }
    const body = $("tbody", rowsTable);
    for (const e of events) {
      const cells = [["timestamp", e.timestamp], ["log_name", e.log_name], ["user", e.user], ["result", e.result], ["source_ip", e.source_ip]];
      const tr = el("tr", { class: "event" });
      for (const [key, v] of cells) {
        const td = el("td", { text: v ?? "" });
        if (key === "timestamp") localTime(td, v);
        else if (v !== undefined) { td.classList.add("value"); td.dataset.key = key; td.dataset.value = v; }
        tr.append(td);
      }
      // The Summary: what else the event says, as key=value pills (click one to filter on it).
      const pills = el("td", { class: "summary" });
      for (const key of SUMMARY_KEYS) {
        if (e[key] === undefined || e[key] === "") continue;
        const pill = el("span", { class: "pill value", text: `${key}=${e[key]}` });
        pill.dataset.key = key;
        pill.dataset.value = e[key];
        pills.append(pill);
      }
      tr.append(pills);
      const detail = el("tr", { class: "sub", hidden: "" }, el("td", { colspan: 6 }, el("pre", { class: "json", text: JSON.stringify(e, null, 2) })));
      tr.addEventListener("click", (ev) => {
        if (ev.target.classList.contains("value")) addToQuery(ev.target.dataset.key, ev.target.dataset.value);
        else detail.hidden = !detail.hidden;
      });
      body.append(tr, detail);
    }
  }

  function tableRows(result) {
    rowsTable.replaceChildren(el("thead", {}, el("tr", {}, ...result.columns.map((c) => el("th", { text: c })))));
    const body = el("tbody");
    for (const row of result.rows) body.append(el("tr", {}, ...row.map((v) => el("td", { text: v ?? "" }))));
    rowsTable.append(body);
  }

  async function submit(append) {
    const started = performance.now();
    const body = scope();
    // A new search goes first in the account's history; a next page is the same search.
    if (append) body.cursor = cursor; else body.history = true;
    const button = $('button[type="submit"]', form);
    button.disabled = true;
    const answer = await runSearch(body);
    button.disabled = false;
    if (!answer.ok) {
      results.hidden = true;
      show($("#qwarning"), "");
      const d = answer.data || {};
      const where = d.line ? ` (line ${d.line}, column ${d.column})` : "";
      show(qerror, `${d.error || "search failed"}${where}${d.excerpt ? "\n" + d.excerpt : ""}${d.hint ? "\nhint: " + d.hint : ""}`);
      if (d.line) {
        // Put the cursor where the parser stopped.
        const lines = query.value.split("\n");
        const at = lines.slice(0, d.line - 1).reduce((n, l) => n + l.length + 1, 0) + d.column - 1;
        query.focus();
        query.setSelectionRange(at, Math.min(at + 1, query.value.length));
      }
      return;
    }
    show(qerror, "");
    if (!append) history.reload();
    const r = answer.data;
    // Keys the query names that hubsight does not know: answered from the raw record, but
    // shown (with the nearest key) so that a typo does not pass unseen.
    show($("#qwarning"), (r.warnings || []).map((w) =>
      `warning (line ${w.line}, column ${w.column}): ${w.message}` + (w.hint ? `\n  ${w.hint}` : "")).join("\n"));
    if (!append) histogram(body, r);
    const drawn = () => chartFor(r, $("#chart-kind").value, { onZoom: zoomTo });
    $("#chart-kind").onchange = () => $("#chart").replaceChildren(drawn());
    const chart = drawn();
    // Bar or pie is a choice only for a table of counts.
    $("#chart-kind").hidden = r.kind !== "table" || !chart;
    $("#chart").replaceChildren(...(chart ? [chart] : []));
    if (r.kind === "events") {
      eventRows(r.events, append);
      cursor = r.next_cursor;
      if (!r.events.length && !append) $("tbody", rowsTable).append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No events match in this time range and these log sets. Widen the time range (or pick no log set) and search again." })));
    }
    else { tableRows(r); cursor = null; }
    $("#more").hidden = !cursor;
    results.hidden = false;
    const count = r.kind === "events" ? $$("tr.event", rowsTable).length : r.rows.length;
    const ms = Math.round(performance.now() - started);
    const summary = $("#summary");
    summary.dataset.ms = String(ms);
    summary.textContent = `${count} ${r.kind === "events" ? "events" : "rows"} · ${r.from} – ${r.to} · store ${r.elapsed_ms} ms, rendered in ${ms} ms` +
      (r.time_limit_hit ? " · time limit hit: narrow the range" : "") + (r.result_cap_hit ? " · result cap hit" : "");
  }

  function zoomTo(from, to) {
    // A time range brushed on a chart becomes the search's absolute range.
    last.value = "";
    $(".abs", form).hidden = false;
    form.elements.from.value = localInput(from);
    form.elements.to.value = localInput(to);
    submit(false);
  }

  async function histogram(body, r) {
    // Events over time above the event list, as InsightIDR shows them; brush to zoom.
    const box = $("#histogram");
    box.replaceChildren();
    if (r.kind !== "events" || !r.events.length) return;
    const counts = await runSearch({ ...body, query: `${body.query} timeslice(60)`, cursor: undefined, history: false });
    const chart = counts.ok ? chartFor(counts.data, "bar", { onZoom: zoomTo, histogram: true }) : null;
    if (chart) box.replaceChildren(chart);
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(false); });
  query.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submit(false); }
  });
  $("#more").addEventListener("click", () => submit(true));
  $$("button.export").forEach((button) => button.addEventListener("click", async () => {
    const format = button.dataset.format, label = button.textContent;
    // A whole result can take many seconds: say so, and do not start it twice meanwhile.
    button.disabled = true;
    button.textContent = "Exporting…";
    try {
      const response = await fetch(`/api/v1/search/export?format=${format}`, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() }, body: JSON.stringify(scope()),
      });
      if (!response.ok) { show(qerror, problem(await response.json())); return; }
      el("a", { href: URL.createObjectURL(await response.blob()), download: `search.${format}` }).click();
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }));
  savedQueries(form, repaint);
  const history = queryHistory(form, (h) => {
    // A recent search comes back whole, scope included, and runs again.
    query.value = h.query;
    for (const name of ["log_sets", "log_names"]) {
      for (const box of $$(`input[name="${name}"]`, form)) box.checked = (h[name] || []).includes(box.value);
    }
    last.value = h.last || "";
    $(".abs", form).hidden = Boolean(h.last);
    form.elements.from.value = h.from ? localInput(h.from) : "";
    form.elements.to.value = h.to ? localInput(h.to) : "";
    repaint();
    submit(false);
  });
  // A pivot from another page brings its time window (ISO) and asks to run at once.
  if (form.dataset.from) {
    form.elements.from.value = localInput(form.dataset.from);
    form.elements.to.value = localInput(form.dataset.to);
  }
  if (query.value || form.dataset.run) submit(false);
}

// The account's recent searches (kept on the server), newest first; a click runs one again.
function queryHistory(form, rerun) {
  const list = $("#history ol");
  async function reload() {
    const answer = await api("GET", "/api/v1/query-history?limit=20");
    if (!answer.ok) return;
    list.replaceChildren(...answer.data.map((h) => {
      const range = h.last ? `last ${h.last}` : `${h.from || "…"} – ${h.to || "…"}`;
      const sets = [...(h.log_sets || []), ...(h.log_names || [])].join(", ");
      const item = el("li", {}, el("button", { type: "button", class: "link-button", text: h.query || "(every event)" }),
        el("span", { class: "muted", text: ` ${range}${sets ? " · " + sets : ""} · ` }), el("time"));
      localTime($("time", item), new Date(h.ran_at * 1000).toISOString());
      $("button", item).addEventListener("click", () => rerun(h));
      return item;
    }));
    $("#history").hidden = !answer.data.length;
  }
  reload();
  return { reload };
}

// The saved-query bar: pick one to load it; "Shared" lets others run it (never change it);
// Delete asks first and is offered only on queries the caller may change (own, or as admin);
// "Give to…" lets an admin give a query whose owner's account was deleted to another account.
async function savedQueries(form, repaint) {
  const select = $("#saved"), unsave = $("#unsave"), share = $("#share"), reassign = $("#reassign");
  const answer = await api("GET", "/api/v1/saved-queries");
  const saved = new Map((answer.ok ? answer.data : []).map((q) => [q.id, q]));
  const label = (q) => (q.owner_deleted ? `${q.name} (${q.owner}, account deleted)`
    : q.can_change || !q.owner ? q.name : `${q.name} (${q.owner}, read-only)`);
  const option = (q) => el("option", { value: q.id, text: label(q) });
  for (const q of saved.values()) select.append(option(q));
  const picked = () => saved.get(select.value);
  const sync = () => {
    const q = picked();
    unsave.disabled = !q?.can_change;
    share.disabled = Boolean(q && !q.can_change);
    share.checked = Boolean(q?.shared);
    reassign.hidden = !(q?.owner_deleted && q.can_change);
  };
  // A refusal is shown above the results; true when the request went through.
  const done = (answer) => { if (!answer.ok) show($("#qerror"), problem(answer.data)); return answer.ok; };
  // A saved query as PUT replaces it, with what changes; kept as the server now has it.
  const change = async (q, edit) => {
    const body = { name: q.name, query: q.query, log_sets: q.log_sets, log_names: q.log_names, last: q.last, ...edit };
    const changed = await api("PUT", `/api/v1/saved-queries/${q.id}`, body);
    if (done(changed)) saved.set(q.id, changed.data);
    return changed;
  };
  select.addEventListener("change", () => {
    sync();
    const q = picked();
    if (!q) return;
    form.elements.query.value = q.query;
    if (q.last) form.elements.last.value = q.last;
    repaint();
  });
  share.addEventListener("change", async () => {
    const q = picked();
    if (q && !(await change(q, { shared: share.checked })).ok) sync();
  });
  reassign.addEventListener("click", async () => {
    const q = picked();
    const owner = q && prompt(`Give the saved query "${q.name}" to which account?`)?.trim();
    if (!owner) return;
    const changed = await change(q, { owner });
    if (!changed.ok) return;
    select.selectedOptions[0].textContent = label(changed.data);
    sync();
  });
  $("#save").addEventListener("click", async () => {
    const name = prompt("Name of the saved query");
    if (!name) return;
    const body = { name, query: form.elements.query.value, shared: share.checked };
    if (form.elements.last.value) body.last = form.elements.last.value;
    const made = await api("POST", "/api/v1/saved-queries", body);
    if (!done(made)) return;
    saved.set(made.data.id, made.data);
    select.append(option(made.data));
    select.value = made.data.id;
    sync();
  });
  unsave.addEventListener("click", async () => {
    const q = picked();
    if (!q || !confirm(`Delete the saved query "${q.name}"? This cannot be undone.`)) return;
    const gone = await api("DELETE", `/api/v1/saved-queries/${q.id}`);
    if (!done(gone)) return;
    saved.delete(q.id);
    select.selectedOptions[0].remove();
    select.value = "";
    sync();
  });
}

document.addEventListener("DOMContentLoaded", () => { if (document.body.dataset.page === "search") searchPage(); });
