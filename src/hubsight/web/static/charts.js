// hubsight console charts: inline SVG bars, pie slices and time series; no chart library.
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function barChart(columns, rows) {
  const value = columns.length - 1;
  const top = rows.slice(0, 20);
  const max = Math.max(1, ...top.map((r) => Number(r[value]) || 0));
  const chart = svg("svg", { class: "bars", viewBox: `0 0 600 ${top.length * 18 + 4}`, role: "img" });
  top.forEach((row, i) => {
    const label = row.slice(0, value).map((v) => v ?? "(none)").join(" · ");
    const n = Number(row[value]) || 0;
    const y = i * 18 + 2;
    chart.append(svg("text", { x: 0, y: y + 12, class: "label" }, label.slice(0, 40)));
    const bar = svg("rect", { x: 250, y, height: 14, width: Math.max(1, (n / max) * 300) });
    bar.append(svg("title", {}, `${label}: ${n}`));
    chart.append(bar);
    chart.append(svg("text", { x: 255 + (n / max) * 300, y: y + 12, class: "value" }, String(n)));
  });
  return chart;
}

function pieChart(columns, rows) {
  const value = columns.length - 1;
  const slices = rows.slice(0, 7).map((r) => [r.slice(0, value).map((v) => v ?? "(none)").join(" · "), Number(r[value]) || 0]);
  const rest = rows.slice(7).reduce((n, r) => n + (Number(r[value]) || 0), 0);
  if (rest) slices.push(["other", rest]);
  const total = slices.reduce((n, [, v]) => n + v, 0) || 1;
  const chart = svg("svg", { class: "pie", viewBox: "0 0 420 160", role: "img" });
  let angle = -Math.PI / 2;
  slices.forEach(([label, v], i) => {
    const sweep = (v / total) * 2 * Math.PI;
    const [x1, y1] = [80 + 70 * Math.cos(angle), 80 + 70 * Math.sin(angle)];
    angle += sweep;
    const [x2, y2] = [80 + 70 * Math.cos(angle), 80 + 70 * Math.sin(angle)];
    const d = sweep >= 2 * Math.PI - 1e-9
      ? "M80,10A70,70 0 1 1 79.99,10Z"
      : `M80,80L${x1.toFixed(2)},${y1.toFixed(2)}A70,70 0 ${sweep > Math.PI ? 1 : 0} 1 ${x2.toFixed(2)},${y2.toFixed(2)}Z`;
    const slice = svg("path", { d, class: `s${i % 6}` });
    slice.append(svg("title", {}, `${label}: ${v}`));
    chart.append(slice);
    chart.append(svg("text", { x: 170, y: 16 + i * 17, class: `label s${i % 6}` }, `■ ${label.slice(0, 36)} ${Math.round((v / total) * 100)}%`));
  });
  return chart;
}

function timeChart(columns, rows) {
  const value = columns.length - 1;
  const series = new Map();
  const times = [...new Set(rows.map((r) => r[0]))].sort();
  for (const row of rows) {
    const key = row.slice(1, value).join(" · ") || columns[value];
    if (!series.has(key)) series.set(key, new Map());
    series.get(key).set(row[0], Number(row[value]) || 0);
  }
  const max = Math.max(1, ...rows.map((r) => Number(r[value]) || 0));
  const W = 600, H = 160, left = 40;
  const x = (i) => left + (times.length < 2 ? 0 : (i / (times.length - 1)) * (W - left - 10));
  const y = (v) => H - 20 - (v / max) * (H - 30);
  const chart = svg("svg", { class: "series", viewBox: `0 0 ${W} ${H + 18 * Math.ceil(series.size / 3)}`, role: "img" });
  chart.append(svg("text", { x: 0, y: 12, class: "label" }, String(max)));
  chart.append(svg("line", { x1: left, x2: W - 10, y1: H - 20, y2: H - 20, class: "axis" }));
  chart.append(svg("text", { x: left, y: H - 5, class: "label" }, times[0] || ""));
  chart.append(svg("text", { x: W - 10, y: H - 5, class: "label", "text-anchor": "end" }, times.at(-1) || ""));
  let n = 0;
  for (const [key, points] of series) {
    const d = times.map((t, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(points.get(t) || 0).toFixed(1)}`).join("");
    chart.append(svg("path", { d, class: `s${n % 6}` }));
    chart.append(svg("text", { x: (n % 3) * 200, y: H + 14 + 18 * Math.floor(n / 3), class: `label s${n % 6}` }, `■ ${key}`));
    n += 1;
  }
  return chart;
}

function chartFor(result, kind = "bar") {
  if (result.kind === "timeseries") return timeChart(result.columns, result.rows);
  if (result.kind === "table" && result.rows.length && typeof result.rows[0].at(-1) === "number") {
    return (kind === "pie" ? pieChart : barChart)(result.columns, result.rows);
  }
  return null;
}

