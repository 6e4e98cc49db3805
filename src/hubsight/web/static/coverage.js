// Coverage page: hunt a Sigma rule (shipped or imported) over 90 days of stored events, or open its LEQL.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.hunt").forEach((button) => button.addEventListener("click", async () => {
    const out = button.parentElement.querySelector("output.hunt-result");
    out.textContent = "hunting…";
    button.disabled = true;
    const answer = await api("POST", "/api/v1/rules/hunt", { rule: button.dataset.rule, last: "90d" });
    button.disabled = false;
    if (!answer.ok) { out.textContent = `${answer.data.error}${answer.data.hint ? " — " + answer.data.hint : ""}`; return; }
    const r = answer.data;
    const who = r.top_users.slice(0, 3).map(([user, n]) => `${user} (${n})`).join(", ");
    out.textContent = `${r.alert_count} alert(s) in 90 days from ${r.matched_events} matching events` + (who ? `; most: ${who}` : "");
  }));
  document.querySelectorAll("button.leql").forEach((button) => button.addEventListener("click", async () => {
    const out = button.parentElement.querySelector("output.hunt-result");
    const answer = await api("GET", `/api/v1/rules/${encodeURIComponent(button.dataset.rule)}/leql`);
    if (!answer.ok) { out.textContent = `${answer.data.error}${answer.data.hint ? " — " + answer.data.hint : ""}`; return; }
    window.location.href = `/search?q=${encodeURIComponent(answer.data.leql)}&last=30d&run=true`;
  }));
});
