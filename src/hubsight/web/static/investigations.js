// Investigations and bulk triage (uses api, problem, show and $ from console.js).
"use strict";

function selectedAlerts() { return $$('input[name="alert"]:checked').map((box) => box.value); }

function bulkTriage() {
  // The bar under a table of alerts with checkboxes: one change for every alert ticked.
  const bar = $("#bulk"), error = $("#alerts-error");
  if (!bar) return;
  const all = $("#all-alerts");
  if (all) all.addEventListener("change", () => $$('input[name="alert"]').forEach((box) => { box.checked = all.checked; }));
  $("#bulk-apply").addEventListener("click", async () => {
    const ids = selectedAlerts();
    if (!ids.length) { show(error, "Tick the alerts to change first."); return; }
    const body = { alert_ids: ids };
    for (const name of ["status", "disposition"]) { const v = $(`select[name="${name}"]`, bar).value; if (v) body[name] = v; }
    const answer = await api("POST", "/api/v1/alerts/triage", body);
    if (answer.ok) location.reload(); else show(error, problem(answer.data));
  });
}

function investigationPage() {
  const box = $("#investigation"), id = box.dataset.id, form = $("#inv-triage");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    const body = { title: f.title.value, status: f.status.value, priority: f.priority.value, assignee: f.assignee.value };
    if (f.disposition.value) body.disposition = f.disposition.value;
    if (f.comment.value.trim()) body.comment = f.comment.value.trim();
    const answer = await api("PATCH", `/api/v1/investigations/${id}`, body);
    if (answer.ok) location.reload(); else show($("#inv-error"), problem(answer.data));
  });
  $("#merge").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const ids = ev.target.elements.ids.value.split(/[\s,]+/).filter(Boolean);
    const answer = await api("POST", `/api/v1/investigations/${id}/merge`, { investigations: ids });
    if (answer.ok) location.reload(); else show($("#inv-error"), problem(answer.data));
  });
  $("#split").addEventListener("click", async () => {
    const answer = await api("POST", `/api/v1/investigations/${id}/split`, { alert_ids: selectedAlerts() });
    if (answer.ok) location.href = `/investigations/${answer.data.id}`; else show($("#alerts-error"), problem(answer.data));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  bulkTriage();
  if (document.body.dataset.page === "investigation") investigationPage();
});
