// hubsight console, Settings: rules, accounts, API tokens, notification targets, retention.
// Uses console.js's helpers ($, $$, el, api, problem, show); both scripts are deferred, so they
// are loaded when DOMContentLoaded fires. Secrets are write-only: an edit leaves them empty, and
// an empty secret keeps the stored one.
"use strict";

function targetBody(form) {
  const f = form.elements, kind = f.kind.value;
  const body = {
    name: f.name.value.trim(), kind, enabled: f.enabled.checked,
    severities: $$('input[name="severities"]', form).filter((b) => b.checked).map((b) => b.value),
  };
  if (kind === "webhook") {
    Object.assign(body, { url: f.url.value.trim(), auth_header: f.auth_header.value, retries: Number(f.retries.value) });
  } else if (kind === "syslog") {
    Object.assign(body, { host: f.syslog_host.value.trim(), port: Number(f.syslog_port.value), protocol: f.protocol.value });
  } else {
    Object.assign(body, {
      host: f.smtp_host.value.trim(), port: Number(f.smtp_port.value), sender: f.sender.value.trim(),
      recipients: f.recipients.value.split(",").map((r) => r.trim()).filter(Boolean),
      starttls: f.security.value === "starttls", smtps: f.security.value === "smtps",
      username: f.username.value.trim() || null, password: f.password.value,
      ca_file: f.ca_file.value.trim() || null,
    });
  }
  // Empty secrets are left out: on an edit the stored ones stay.
  for (const secret of ["url", "auth_header", "password"]) if (body[secret] === "") delete body[secret];
  return body;
}

function showKind(form) {
  $$("fieldset[data-kind]", form).forEach((set) => { set.hidden = set.dataset.kind !== form.elements.kind.value; });
}

function fillTarget(form, t) {
  const f = form.elements;
  form.reset();
  f.name.value = t.name; f.name.readOnly = true;
  f.kind.value = t.kind; f.kind.disabled = true;
  f.enabled.checked = t.enabled;
  $$('input[name="severities"]', form).forEach((b) => { b.checked = t.severities.includes(b.value); });
  const kept = (state) => (state === "set" ? "set: leave empty to keep" : "not set");
  if (t.kind === "webhook") {
    f.url.placeholder = kept(t.url); f.auth_header.placeholder = kept(t.auth_header); f.retries.value = t.retries;
  } else if (t.kind === "syslog") {
    f.syslog_host.value = t.host; f.syslog_port.value = t.port; f.protocol.value = t.protocol;
  } else {
    f.smtp_host.value = t.host; f.smtp_port.value = t.port; f.sender.value = t.sender;
    f.recipients.value = t.recipients.join(", "); f.username.value = t.username || "";
    f.password.placeholder = kept(t.password); f.ca_file.value = t.ca_file || "";
    f.security.value = t.starttls ? "starttls" : t.smtps ? "smtps" : "none";
  }
  form.dataset.mode = "edit";
  $("#target-form-title").textContent = `Edit target ${t.name}`;
  $("#target-cancel").hidden = false;
  showKind(form);
  form.scrollIntoView({ block: "nearest" });
}

function notifySettings() {
  const form = $("#target-form");
  if (form) {
    form.elements.kind.addEventListener("change", () => showKind(form));
    $("#target-cancel").addEventListener("click", () => location.reload());
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = targetBody(form), editing = form.dataset.mode === "edit";
      const answer = editing
        ? await api("PUT", `/api/v1/notify/targets/${encodeURIComponent(body.name)}`, body)
        : await api("POST", "/api/v1/notify/targets", body);
      if (answer.ok) location.reload(); else show($(".error", form), problem(answer.data));
    });
  }
  $$("button[data-edit-target]").forEach((button) => button.addEventListener("click", async () => {
    const answer = await api("GET", "/api/v1/notify/targets");
    const target = answer.ok && answer.data.find((t) => t.name === button.dataset.editTarget);
    if (target) fillTarget(form, target); else alert(problem(answer.data));
  }));
  $$("button[data-remove-target]").forEach((button) => button.addEventListener("click", async () => {
    if (!confirm(`Remove notification target ${button.dataset.removeTarget}?`)) return;
    const answer = await api("DELETE", `/api/v1/notify/targets/${encodeURIComponent(button.dataset.removeTarget)}`);
    if (answer.ok) location.reload(); else alert(problem(answer.data));
  }));
  $$("button[data-test-target]").forEach((button) => button.addEventListener("click", async () => {
    const out = $(".test-result", button.closest("td"));
    out.hidden = false;
    out.replaceChildren(el("span", { class: "muted", text: "sending…" }));
    button.disabled = true;
    const answer = await api("POST", `/api/v1/notify/targets/${encodeURIComponent(button.dataset.testTarget)}/test`);
    button.disabled = false;
    const r = answer.data;
    if (!answer.ok) out.replaceChildren(el("span", { class: "error", text: problem(r) }));
    else if (r.ok) out.replaceChildren(el("span", { class: "field-msg ok", text: `delivered in ${Math.round(r.elapsed_ms)} ms` }));
    else out.replaceChildren(el("div", { class: "error", text: `not delivered: ${r.error}` }), el("div", { class: "hint", text: r.hint || "" }));
  }));
}

function retentionSettings() {
  $$("form.retention").forEach((form) => form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = $(".field-msg", form);
    // Closed alerts and investigations: empty keeps them for ever.
    const cases = form.dataset.logSet === "alerts", value = form.elements.days.value.trim();
    const days = cases && value === "" ? null : Number(value);
    const answer = await api("PUT", `/api/v1/retention/${encodeURIComponent(form.dataset.logSet)}`, { days });
    out.className = answer.ok ? "field-msg ok" : "field-msg error";
    out.textContent = !answer.ok ? problem(answer.data) : cases ? (days === null ? "saved; kept for ever" : "saved; the service deletes what is due within a minute") : "saved; the store applies it within a second";
  }));
}

// Rules (enable, tune), accounts and API tokens.
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

document.addEventListener("DOMContentLoaded", settingsPage);
document.addEventListener("DOMContentLoaded", notifySettings);
document.addEventListener("DOMContentLoaded", retentionSettings);
