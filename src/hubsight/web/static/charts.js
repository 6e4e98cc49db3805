// hubsight console charts, drawn by Apache ECharts (vendored in static/vendor/echarts, with its
// licence; nothing is fetched at run time). They draw on canvas: ECharts' SVG renderer writes
// style attributes, which the console's Content-Security-Policy refuses. The aria option puts a
// text description of each chart in its aria-label, for screen readers.
"use strict";

// Series beyond the largest ones are summed into one "other", so a legend stays readable.
const TOP_SERIES = 8;
const TOP_BARS = 20;
const label = (row, value) => row.slice(0, value).map((v) => v ?? "(none)").join(" · ");

function tooltipOf(params) {
  // The tooltip as DOM nodes: ECharts' own markup carries style attributes, which the
  // Content-Security-Policy refuses; colours set through the style object are allowed.
  const list = Array.isArray(params) ? params : [params];
  const box = el("div");
  const head = list[0].axisValueLabel ?? list[0].name;
  if (head) box.append(el("b", { text: head }));
  for (const p of list) {
    const dot = el("span", { text: "● " });
    dot.style.color = p.color;
    const value = Array.isArray(p.value) ? p.value.at(-1) : p.value;
    const name = Array.isArray(params) ? p.seriesName : p.name;
    box.append(el("div", {}, dot, `${name}: ${value}${p.percent !== undefined ? ` (${p.percent}%)` : ""}`));
  }
  return box;
}

function topAndOther(totals, limit) {
  // The keys to draw on their own, largest first; the rest go into "other".
  const sorted = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([k]) => k);
  return { kept: sorted.slice(0, limit), others: new Set(sorted.slice(limit)) };
}

function ranked(columns, rows, limit) {
  // A table of counts as [label, count] pairs, largest first, the rest summed into one "other".
  const value = columns.length - 1;
  const totals = new Map(rows.map((r) => [label(r, value), Number(r[value]) || 0]));
  const { kept, others } = topAndOther(totals, limit);
  const pairs = kept.map((k) => [k, totals.get(k)]);
  if (others.size) pairs.push([`other (${others.size})`, [...others].reduce((n, k) => n + totals.get(k), 0)]);
  return pairs;
}

function timeOption(columns, rows, histogram) {
  const value = columns.length - 1;
  const grouped = value > 1;
  const points = new Map(), totals = new Map();
  for (const row of rows) {
    const key = grouped ? label(row.slice(1), value - 1) : columns[value];
    const n = Number(row[value]) || 0;
    if (!points.has(key)) points.set(key, new Map());
    points.get(key).set(row[0], (points.get(key).get(row[0]) || 0) + n);
    totals.set(key, (totals.get(key) || 0) + n);
  }
  const times = [...new Set(rows.map((r) => r[0]))].sort();
  const { kept, others } = topAndOther(totals, TOP_SERIES);
  const data = (keys) => times.map((t) => [t, keys.reduce((n, k) => n + (points.get(k).get(t) || 0), 0)]);
  // groupby + timeslice: stacked bars; one count over time: a line (bars for a histogram).
  const kind = grouped || histogram ? "bar" : "line";
  const series = kept.map((k) => ({ name: k, type: kind, stack: grouped ? "all" : undefined, data: data([k]), showSymbol: false }));
  if (others.size) series.push({ name: `other (${others.size})`, type: kind, stack: "all", data: data([...others]), showSymbol: false });
  return {
    tooltip: { trigger: "axis", formatter: tooltipOf },
    legend: grouped ? { type: "scroll", top: 0 } : undefined,
    grid: { left: 56, right: 16, top: grouped ? 48 : 28, bottom: 28 },
    xAxis: { type: "time" },
    yAxis: { type: "value", name: columns[value], nameLocation: "end", minInterval: 1 },
    series,
  };
}

function barOption(columns, rows) {
  const value = columns.length - 1;
  const bars = ranked(columns, rows, TOP_BARS);
  return {
    // Hovering anywhere on a bar's row shows it, not only over the bar itself.
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, formatter: tooltipOf },
    grid: { left: 8, right: 40, top: 8, bottom: 24, containLabel: true },
    xAxis: { type: "value", name: columns[value], minInterval: 1 },
    yAxis: { type: "category", inverse: true, data: bars.map(([k]) => k), axisLabel: { width: 220, overflow: "truncate" } },
    series: [{ name: columns[value], type: "bar", data: bars.map(([k, n]) => ({ name: k, value: n })), label: { show: true, position: "right" } }],
  };
}

function pieOption(columns, rows) {
  const slices = ranked(columns, rows, TOP_SERIES).map(([name, value]) => ({ name, value }));
  return {
    tooltip: { trigger: "item", formatter: tooltipOf },
    legend: { type: "scroll", orient: "vertical", left: 0, top: 0 },
    series: [{ type: "pie", radius: "70%", center: ["65%", "50%"], data: slices }],
  };
}

function chartOption(result, kind, histogram) {
  // No rows: "No data." rather than empty axes.
  if (result.kind === "timeseries") return result.rows.length ? timeOption(result.columns, result.rows, histogram) : null;
  if (result.kind === "table" && result.rows.length && typeof result.rows[0].at(-1) === "number") {
    return kind === "pie" ? pieOption(result.columns, result.rows) : barOption(result.columns, result.rows);
  }
  return null;
}

function brushToZoom(chart, onZoom) {
  // Dragging across a time chart shades the range; letting go hands it to ``onZoom``.
  const zr = chart.getZr();
  let start = null;
  const time = (x) => new Date(chart.convertFromPixel({ xAxisIndex: 0 }, x)).toISOString();
  const shade = (x) => {
    const grid = chart.getModel().getComponent("grid").coordinateSystem.getRect();
    const shape = { x: Math.min(start, x), y: grid.y, width: Math.abs(x - start), height: grid.height };
    chart.setOption({ graphic: [{ id: "brush", type: "rect", shape, style: { fill: "rgba(31,95,191,0.15)" } }] });
  };
  zr.on("mousedown", (e) => { if (chart.containPixel("grid", [e.offsetX, e.offsetY])) start = e.offsetX; });
  zr.on("mousemove", (e) => { if (start !== null) shade(e.offsetX); });
  zr.on("mouseup", (e) => {
    if (start === null) return;
    const from = start;
    start = null;
    chart.setOption({ graphic: [{ id: "brush", $action: "remove" }] });
    // A click is not a range.
    if (Math.abs(e.offsetX - from) < 4) return;
    const [a, b] = [time(Math.min(from, e.offsetX)), time(Math.max(from, e.offsetX))];
    onZoom(a, b);
  });
}

// The chart of a search result, or null when it has nothing to chart. ``onZoom(from, to)`` is
// called with ISO times when someone brushes a time range on a time chart.
function chartFor(result, kind = "bar", { onZoom = null, histogram = false } = {}) {
  const option = chartOption(result, kind, histogram);
  if (!option) return null;
  const box = el("div", { class: "echart" });
  const bars = option.yAxis && option.yAxis.type === "category" ? option.yAxis.data.length : 0;
  box.style.height = `${bars ? Math.max(120, bars * 22 + 40) : histogram ? 140 : 240}px`;
  // ECharts measures its box: draw once the box is in the page.
  requestAnimationFrame(() => {
    const chart = echarts.init(box, null, { renderer: "canvas" });
    chart.setOption({ aria: { enabled: true }, ...option });
    new ResizeObserver(() => chart.resize()).observe(box);
    if (result.kind === "timeseries" && onZoom) brushToZoom(chart, onZoom);
    box.chart = chart;
  });
  return box;
}
