// Source health charts (uses console.js and charts.js): the events-per-minute sparklines of the
// sources table (Data Collection, dashboard) and a source's own page with its lag per partition.
"use strict";
// Events stored per clock minute over the last hour ([ISO minute, count] pairs from a source's
// health): a bare line in a table cell, or bars with axes on a source's own page. Drawn again in
// place when the health is read again.
function sparkline(box, history, large = false) {
  const data = history || [];
  const total = data.reduce((n, [, v]) => n + v, 0);
  const top = Math.max(0, ...data.map(([, v]) => v));
  if (!box.chart) {
    box.chart = echarts.init(box, null, { renderer: "canvas" });
    new ResizeObserver(() => box.chart.resize()).observe(box);
  }
  box.chart.setOption({
    aria: { enabled: true, label: { description: `Events stored per minute over the last hour: ${total} in all, at most ${top} in one minute.` } },
    tooltip: { trigger: "axis", formatter: tooltipOf, confine: true },
    grid: large ? { left: 48, right: 16, top: 24, bottom: 28 } : { left: 1, right: 1, top: 2, bottom: 2 },
    xAxis: { type: "time", show: large },
    yAxis: { type: "value", show: large, minInterval: 1, name: "events" },
    series: [{ name: "events", type: large ? "bar" : "line", data, showSymbol: false, areaStyle: large ? undefined : { opacity: 0.2 } }],
  });
}

// ---- page: one event source ----
function sourcePage() {
  const box = $("#per-minute"), name = $("#source").dataset.source;
  sparkline(box, JSON.parse(box.dataset.history), true);
  setInterval(async () => {
    const answer = await api("GET", `/api/v1/event-sources/${encodeURIComponent(name)}/health`);
    if (!answer.ok) return;
    $("#rate").textContent = answer.data.events_per_minute;
    sparkline(box, answer.data.events_per_minute_history, true);
    const dash = (v) => v ?? "—";
    if (answer.data.lag.length) $("#lag tbody").replaceChildren(...answer.data.lag.map((p) => el("tr", {},
      el("td", { text: p.topic }), ...[p.partition, dash(p.committed), dash(p.high_watermark), dash(p.lag)].map((v) => el("td", { class: "num", text: v })))));
  }, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  $$(".spark[data-history]").forEach((box) => sparkline(box, JSON.parse(box.dataset.history)));
  if (document.body.dataset.page === "source") sourcePage();
});
