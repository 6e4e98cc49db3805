// Data Collection: the add and edit forms of event sources, connection tests, unparsed samples.
// Uses console.js's helpers; secrets are write-only (the API never sends them back).
"use strict";
const CONNECTION_STRING = /^Endpoint=sb:\/\/([^/;:]+)[^;]*;SharedAccessKeyName=[^;]+;SharedAccessKey=[^;]+(?:;EntityPath=([^;]+))?;?$/;

function sourceBody(form) {
  const f = form.elements, text = (name) => f[name].value.trim();
  const profile = f.kind.value === "eventhubs"
    ? { kind: "eventhubs", server: text("server"), connection_string: text("connection_string") }
    : { kind: "kafka", bootstrap: text("bootstrap"), sasl: f.sasl.value, tls: f.tls.checked,
        ...(text("username") ? { username: text("username") } : {}), ...(f.password.value ? { password: f.password.value } : {}),
        ...(text("tls_ca") ? { tls_ca: text("tls_ca") } : {}) };
  const body = { name: text("name"), profile, keep_unparsed: f.keep_unparsed.checked, enabled: form.dataset.enabled !== "false",
    topics: text("topics").split(",").map((t) => t.trim()).filter(Boolean), topic_pattern: text("topic_pattern") || null,
    consumer_group: text("consumer_group") || "hubsight", default_domain: text("default_domain") || null, start_from: f.start_from.value };
  return { ...body, ...(text("advanced") ? JSON.parse(text("advanced")) : {}) };
}

function fillSource(form, s) {
  const f = form.elements, p = s.profile;
  const values = { name: s.name, kind: p.kind, server: p.server, bootstrap: p.bootstrap, sasl: p.sasl || "none", username: p.username,
    tls_ca: p.tls_ca, topics: s.topics.join(", "), topic_pattern: s.topic_pattern, consumer_group: s.consumer_group,
    default_domain: s.default_domain, start_from: s.start_from, advanced: JSON.stringify({ tuning: s.tuning }),
    connection_string: "", password: "" };
  for (const [name, value] of Object.entries(values)) f[name].value = value ?? "";
  f.tls.checked = !!p.tls;
  f.password.placeholder = p.password ? "stored: leave empty to keep it" : "";
  f.keep_unparsed.checked = s.keep_unparsed;
  form.dataset.enabled = s.enabled;
  // What the stored secret is for, told from the stored fields (the secret itself stays on the server).
  form.dataset.stored = p.kind === "eventhubs" ? `stored connection string kept: namespace ${p.server}, hub ${s.topic_pattern || s.topics.join(", ")}` : "";
}

function checkConnectionString(form) {
  const f = form.elements, cs = f.connection_string.value.trim(), msg = $(".cs-msg", form);
  const m = cs.match(CONNECTION_STRING), topics = f.topics.value.split(",").map((t) => t.trim()).filter(Boolean);
  if (m && !f.server.value) f.server.value = m[1];
  const server = f.server.value.trim().toLowerCase().replace(/^sb:\/\//, "").split(":")[0];
  const problem = !m ? "expected Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…"
    : m[1].toLowerCase() !== server ? `the connection string is for ${m[1]} but the namespace host is ${server || "empty"}`
    : m[2] && !f.topic_pattern.value && topics.some((t) => t !== m[2]) ? `the connection string is limited to the hub ${m[2]} (EntityPath)` : "";
  msg.className = "field-msg cs-msg " + (!cs ? "" : problem ? "error" : "ok");
  msg.textContent = !cs ? form.dataset.stored || "" : problem || `namespace ${m[1]}${m[2] ? ` · hub ${m[2]}` : ""}`;
}

function showSteps(box, name, answer) {
  box.hidden = false;
  if (!answer.ok) { box.replaceChildren(el("p", { class: "error", text: problem(answer.data) })); return; }
  const list = el("ol", { class: "steps" });
  for (const s of answer.data.steps) {
    list.append(el("li", { class: `step-${s.status}` }, el("b", { text: `${s.step}: ${s.status}` }), ` ${s.detail}`,
      ...(s.hint ? [el("div", { class: "hint", text: s.hint })] : [])));
  }
  box.replaceChildren(el("h3", { text: `${name}: ${answer.data.ok ? "connection works" : "connection fails"}` }), list);
}

// Wires a source form: kind switch, connection string checks, "Test connection" on the values in
// the form (nothing saved), and submit. ``save`` and ``testUrl`` say where they go.
function sourceForm(form, save, testUrl) {
  const kind = form.elements.kind, error = $(".form-error", form), msg = $(".form-msg", form), box = $(".probe", form);
  const flip = () => $$("fieldset[data-kind]", form).forEach((f) => { f.hidden = f.dataset.kind !== kind.value; });
  kind.addEventListener("change", flip);
  form.flip = flip;
  flip();
  // The connection string must agree with the namespace host and the topics: recheck on each.
  form.addEventListener("input", (ev) => {
    if (["connection_string", "server", "topics", "topic_pattern"].includes(ev.target.name)) checkConnectionString(form);
  });
  form.say = (ok, text) => { msg.className = "field-msg form-msg " + (ok ? "ok" : "error"); show(msg, text); };
  form.body = () => { try { return sourceBody(form); } catch { form.say(false, "Advanced settings are not valid JSON."); return null; } };
  $(".probe-edited", form).addEventListener("click", async () => {
    const body = form.body();
    if (!body) return;
    box.hidden = false;
    box.replaceChildren(el("p", { class: "muted", text: `Testing the settings of ${body.name} in this form…` }));
    showSteps(box, `${body.name} (not saved)`, await api("POST", testUrl(), body));
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = form.body();
    if (!body) return;
    const answer = await save(body);
    if (answer.ok) location.reload(); else show(error, problem(answer.data));
  });
}

function editForm() {
  const card = $("#edit-card");
  card.append($("#edit-template").content.cloneNode(true));
  const form = $("#edit-source", card);
  const url = () => `/api/v1/event-sources/${encodeURIComponent(form.elements.name.value)}`;
  sourceForm(form, (body) => api("PUT", url(), body), () => url() + "/test");
  let timer = null;
  // Live validation against the stored settings and secret: the server checks a dry run.
  const validate = async () => {
    const body = form.body();
    if (!body) return;
    const answer = await api("PUT", url() + "?dry_run=true", body);
    form.say(answer.ok, answer.ok ? "valid; not saved yet" : problem(answer.data));
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(validate, 400); };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  $(".cancel", form).addEventListener("click", () => { card.hidden = true; });
  return form;
}

function editSource() {
  let form = null;
  $$("button[data-edit]").forEach((button) => button.addEventListener("click", async () => {
    const answer = await api("GET", `/api/v1/event-sources/${encodeURIComponent(button.dataset.edit)}`);
    if (!answer.ok) { alert(problem(answer.data)); return; }
    form = form || editForm();
    fillSource(form, answer.data);
    form.flip();
    checkConnectionString(form);
    for (const node of $$(".form-msg, .probe, .form-error", form)) show(node, "");
    $("#edit-card").hidden = false;
    $("#edit-card").scrollIntoView({ block: "start" });
    form.elements[answer.data.profile.kind === "kafka" ? "bootstrap" : "server"].focus();
  }));
}

function sourcesPage() {
  const add = $("#add-source");
  if (add) sourceForm(add, (body) => api("POST", "/api/v1/event-sources", body), () => "/api/v1/event-sources/test");
  editSource();
  $$("button[data-test]").forEach((button) => button.addEventListener("click", async () => {
    const probe = $("#probe");
    probe.hidden = false;
    probe.replaceChildren(el("p", { class: "muted", text: `Testing ${button.dataset.test}…` }));
    showSteps(probe, button.dataset.test, await api("POST", `/api/v1/event-sources/${encodeURIComponent(button.dataset.test)}/test`));
  }));
  $$("button[data-unparsed]").forEach((button) => button.addEventListener("click", async () => {
    // Three sample records of the category, with why they were not parsed.
    const box = $(".samples", button.closest("td"));
    const query = `where(category=${leqlString(button.dataset.unparsed)})`;
    const answer = await runSearch({ query, last: "30d", log_sets: ["Unparsed Data"], log_names: [button.dataset.log], limit: 3 });
    box.hidden = false;
    if (!answer.ok) { box.replaceChildren(el("p", { class: "error", text: problem(answer.data) })); return; }
    const link = el("a", { href: `/search?log_set=Unparsed+Data&q=${encodeURIComponent(query)}`, text: "Open in Log Search" });
    box.replaceChildren(...answer.data.events.map((e) => el("div", {},
      el("div", { class: "hint", text: e.parse_error || "" }), el("pre", { class: "json", text: JSON.stringify(e.raw, null, 2) }))), link);
  }));
  $$("button[data-enable]").forEach((button) => button.addEventListener("click", async () => {
    const body = { enabled: button.dataset.enabled !== "true" };
    const answer = await api("PATCH", `/api/v1/event-sources/${encodeURIComponent(button.dataset.enable)}`, body);
    if (answer.ok) location.reload(); else alert(problem(answer.data));
  }));
  $$("button[data-delete]").forEach((button) => button.addEventListener("click", async () => {
    if (!confirm(`Delete source ${button.dataset.delete}? Its stored events stay.`)) return;
    const answer = await api("DELETE", `/api/v1/event-sources/${encodeURIComponent(button.dataset.delete)}`);
    if (answer.ok) location.reload(); else alert(problem(answer.data));
  }));
}
