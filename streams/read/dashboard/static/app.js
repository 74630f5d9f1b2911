/* segstream dashboard: one page over the read API (or over the figures a report embeds).
 * Live: every fetch carries the API key from sessionStorage as `Authorization: Bearer`; the page itself holds
 * no data. Report (`segstream report`): window.SEGSTREAM_REPORT holds the API's answers for fixed URLs, and
 * the same code draws them, so a report shows the figures the dashboard shows.
 */
"use strict";

const REPORT = window.SEGSTREAM_REPORT || null;
const KEY = "segstream.key";
const charts = {};
window.segstreamCharts = charts; // read by the browser tests: the figures each chart was drawn with

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options) {
  if (REPORT) {
    if (Object.prototype.hasOwnProperty.call(REPORT.responses, path)) return REPORT.responses[path];
    throw new ApiError(404, "not in this report");
  }
  const opts = options || {};
  const headers = Object.assign({}, opts.headers || {}, { Authorization: "Bearer " + sessionStorage.getItem(KEY) });
  const response = await fetch(path, Object.assign({}, opts, { headers, credentials: "omit", cache: "no-store" }));
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    showLogin("The API refused this key (401): paste a valid one.");
    throw new ApiError(401, "no valid key");
  }
  if (!response.ok) throw new ApiError(response.status, (body && body.error) || response.statusText);
  return body;
}

// -- formatting: thousands separators, money in major units with its currency (exact strings, no float) ----
const INT = new Intl.NumberFormat("en-US");
const DEC = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
function fmtInt(n) { return n === null || n === undefined ? "—" : INT.format(n); }
function groupDigits(text) {
  const [whole, frac] = String(text).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac === undefined ? grouped : grouped + "." + frac;
}
function fmtMoney(m) { return m && m.amount !== undefined ? groupDigits(m.amount) + " " + m.currency : "—"; }
function fmtNumber(key, v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "object" && v.amount !== undefined) return fmtMoney(v);
  if (/(rate|share|ratio|percent)/.test(key) && Math.abs(v) <= 1) return DEC.format(v * 100) + " %";
  return Number.isInteger(v) ? fmtInt(v) : DEC.format(v);
}
function label(key) { return key.replace(/_/g, " "); }
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else if (k === "on") Object.assign(node, v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}
function chart(id) {
  const node = document.getElementById(id);
  const existing = echarts.getInstanceByDom(node);
  if (existing) existing.dispose();
  const c = echarts.init(node, null, { renderer: REPORT ? "svg" : "canvas" });
  charts[id] = c;
  return c;
}
window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.isDisposed() || c.resize()));
function failure(node, error) {
  const text = error.status === 403 ? "This key lacks the scope for this view (403): " + error.message
    : "Could not load: " + error.message;
  node.replaceChildren(el("p", { class: "error", text }));
}

// -- login ---------------------------------------------------------------------------------------------
function showLogin(message) {
  document.getElementById("app").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("logout").hidden = true;
  document.getElementById("login-error").textContent = message || "";
}
document.getElementById("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = document.getElementById("key").value.trim();
  if (!value) return;
  sessionStorage.setItem(KEY, value);
  document.getElementById("key").value = "";
  start();
});
document.getElementById("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); showLogin(""); });

// -- state and routing -----------------------------------------------------------------------------------
const state = { grids: {}, grid: "lifecycle", from: "", to: "", crosstab: null };

function route() {
  const [view, arg] = (location.hash.replace(/^#/, "") || "overview").split("/");
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  const views = { overview: viewOverview, crosstab: viewCrosstab, customer: viewCustomer, definitions: viewDefinitions };
  (views[view] || viewOverview)(arg ? decodeURIComponent(arg) : "");
}
window.addEventListener("hashchange", () => { if (!document.getElementById("app").hidden) route(); });

async function start() {
  if (!REPORT && !sessionStorage.getItem(KEY)) { showLogin(""); return; }
  let grids;
  try { grids = await api("/grids"); } catch (e) { if (e.status !== 401) showLogin("Cannot read the grids: " + e.message); return; }
  state.grids = grids;
  if (REPORT && REPORT.first_grid) state.grid = REPORT.first_grid;
  if (!(state.grid in grids)) state.grid = Object.keys(grids)[0];
  document.getElementById("login").hidden = true;
  document.getElementById("app").hidden = false;
  document.getElementById("logout").hidden = !!REPORT;
  if (REPORT) {
    state.from = REPORT.period.from; state.to = REPORT.period.to;
    document.querySelectorAll('[data-view="customer"], [data-view="definitions"]').forEach((a) => a.remove());
    document.getElementById("namespace").textContent =
      "report of namespace " + REPORT.namespace + ", " + REPORT.period.from + " to " + REPORT.period.to
      + " (made " + REPORT.generated_at + ")";
  } else {
    api("/health").then((h) => { document.getElementById("namespace").textContent = "namespace " + h.namespace; })
      .catch(() => {});
  }
  state.crosstab = await findCrosstab();
  document.getElementById("nav-crosstab").hidden = !state.crosstab;
  route();
}

// -- segments: sizes over time, transitions between two dates, KPIs with a trend, members -----------------
function period() {
  return state.from && state.to ? "?from=" + state.from + "&to=" + state.to : "";
}

function viewOverview() {
  const app = document.getElementById("app");
  const select = el("select", { id: "grid" });
  for (const g of Object.keys(state.grids)) select.append(el("option", { value: g, text: g }));
  select.value = state.grid;
  const from = el("input", { id: "from", type: "date" });
  const to = el("input", { id: "to", type: "date" });
  from.value = state.from; to.value = state.to;
  const controls = el("div", { class: "controls" }, el("label", { text: "Grid " }, select),
    el("label", { text: "From " }, from), el("label", { text: "To " }, to));
  if (REPORT) { from.disabled = true; to.disabled = true; }
  const reload = () => { state.grid = select.value; state.from = from.value; state.to = to.value; drawOverview(); };
  select.addEventListener("change", reload);
  from.addEventListener("change", reload);
  to.addEventListener("change", reload);
  app.replaceChildren(
    el("div", { class: "card" }, controls),
    el("div", { class: "card" }, el("h2", { text: "Segment sizes per day (end of day, UTC)" }),
      el("div", { id: "chart-sizes", class: "chart" })),
    el("div", { class: "row" },
      el("div", { class: "card" }, el("h2", { id: "moves-title", text: "Transitions between the two dates" }),
        el("div", { id: "chart-moves", class: "chart" })),
      el("div", { class: "card", id: "members-card" }, el("h2", { text: "Members" }),
        el("p", { class: "note", text: REPORT ? "Not in a report: member ids are personal data."
          : "Pick a segment in the table below to list its members." }))),
    el("div", { class: "card" }, el("h2", { text: "KPIs per segment" }), el("div", { id: "kpis" })),
  );
  drawOverview();
}

async function drawOverview() {
  // A newer change of grid or dates supersedes this drawing: answers that arrive late are dropped.
  const generation = state.generation = (state.generation || 0) + 1;
  const current = () => generation === state.generation;
  const grid = state.grid;
  let sizes;
  try { sizes = await api("/grids/" + encodeURIComponent(grid) + "/sizes" + period()); } catch (e) {
    if (current()) failure(document.getElementById("chart-sizes"), e);
    return;
  }
  if (!current()) return;
  if (!state.from && sizes.days.length) {
    state.from = sizes.days[0]; state.to = sizes.days[sizes.days.length - 1];
    document.getElementById("from").value = state.from; document.getElementById("to").value = state.to;
  }
  drawSizes(sizes);
  const [moves, kpis] = await Promise.allSettled([
    api("/grids/" + encodeURIComponent(grid) + "/moves" + period()),
    api("/grids/" + encodeURIComponent(grid) + "/segments"),
  ]);
  if (!current()) return;
  if (moves.status === "fulfilled") drawMoves(moves.value); else failure(document.getElementById("chart-moves"), moves.reason);
  if (kpis.status === "fulfilled") drawKpis(kpis.value, sizes); else failure(document.getElementById("kpis"), kpis.reason);
}

function drawSizes(sizes) {
  const c = chart("chart-sizes");
  c.setOption({
    animation: !REPORT,
    tooltip: { trigger: "axis", valueFormatter: fmtInt },
    legend: { type: "scroll", top: 0 },
    grid: { left: 70, right: 20, top: 40, bottom: 60 },
    dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
    xAxis: { type: "category", boundaryGap: false, data: sizes.days },
    yAxis: { type: "value", axisLabel: { formatter: fmtInt } },
    series: Object.entries(sizes.sizes).map(([segment, data]) => ({
      name: segment, type: "line", stack: "size", areaStyle: {}, symbol: "none", emphasis: { focus: "series" }, data,
    })),
  });
}

function drawMoves(moves) {
  const rows = moves.segments.filter((s) => moves.cells.some((c) => c[0] === s));
  const cols = moves.segments.filter((s) => moves.cells.some((c) => c[1] === s));
  const max = moves.cells.reduce((m, c) => Math.max(m, c[2]), 0);
  document.getElementById("moves-title").textContent = "Transitions " + (moves.start || "…") + " to "
    + (moves.end || "…") + ": " + fmtInt(moves.total) + " (row: from, column: to; '-': no segment)";
  const c = chart("chart-moves");
  c.setOption({
    animation: !REPORT,
    tooltip: { formatter: (p) => p.data[3] + " → " + p.data[4] + ": " + fmtInt(p.data[2]) },
    grid: { left: 110, right: 20, top: 10, bottom: 90 },
    xAxis: { type: "category", data: cols, axisLabel: { rotate: 40 }, name: "to", nameLocation: "end" },
    yAxis: { type: "category", data: rows, inverse: true, name: "from" },
    visualMap: { dimension: 2, min: 0, max: Math.max(1, max), calculable: false, orient: "horizontal", left: "center", bottom: 0,
      itemHeight: 120, inRange: { color: ["#e8f1fa", "#1d6fb8"] }, show: max > 0 },
    series: [{
      name: "transitions", type: "heatmap",
      data: moves.cells.map(([f, t, n]) => [cols.indexOf(t), rows.indexOf(f), n, f, t]),
      label: { show: true, formatter: (p) => fmtInt(p.data[2]) },
    }],
  });
}

function extraColumns(segments) {
  const known = new Set(["customers", "revenue", "orders", "average_basket"]);
  const extra = [];
  for (const k of Object.values(segments)) {
    for (const [key, v] of Object.entries(k)) {
      if (known.has(key) || key.endsWith("_minor") || extra.includes(key)) continue;
      if (typeof v === "number" || (v && typeof v === "object" && v.amount !== undefined)) extra.push(key);
    }
  }
  return extra;
}

function sparkline(values) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", "120"); svg.setAttribute("height", "24"); svg.setAttribute("class", "spark");
  if (values.length > 1) {
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const points = values.map((v, i) => (i * 118 / (values.length - 1) + 1).toFixed(1) + ","
      + (22 - (v - lo) * 20 / span).toFixed(1));
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", "#1d6fb8"); line.setAttribute("stroke-width", "1.5");
    svg.append(line);
  }
  return svg;
}

function drawKpis(answer, sizes) {
  const extra = extraColumns(answer.segments);
  const head = el("tr", {}, el("th", { text: "segment" }), el("th", { class: "num", text: "customers" }),
    el("th", { class: "num", text: "revenue" }), el("th", { class: "num", text: "orders" }),
    el("th", { class: "num", text: "average basket" }),
    ...extra.map((k) => el("th", { class: "num", text: label(k) })),
    el("th", { text: "size, " + (sizes.days[0] || "") + " to " + (sizes.days[sizes.days.length - 1] || "") }));
  const body = el("tbody");
  for (const [segment, k] of Object.entries(answer.segments)) {
    const name = REPORT ? el("span", { text: segment })
      : el("a", { class: "link", text: segment, on: { onclick: () => showMembers(answer.grid, segment, null) } });
    body.append(el("tr", { "data-segment": segment }, el("td", {}, name),
      el("td", { class: "num", "data-field": "customers", text: fmtInt(k.customers) }),
      el("td", { class: "num", "data-field": "revenue", text: fmtMoney(k.revenue) }),
      el("td", { class: "num", "data-field": "orders", text: fmtInt(k.orders) }),
      el("td", { class: "num", "data-field": "average_basket", text: fmtMoney(k.average_basket) }),
      ...extra.map((key) => el("td", { class: "num", "data-field": key, text: fmtNumber(key, k[key]) })),
      el("td", {}, sparkline(sizes.sizes[segment] || []))));
  }
  document.getElementById("kpis").replaceChildren(el("table", { id: "kpi-table" }, el("thead", {}, head), body));
}

async function showMembers(grid, segment, cursor) {
  const card = document.getElementById("members-card");
  const path = "/grids/" + encodeURIComponent(grid) + "/segments/" + encodeURIComponent(segment) + "/members?count=100"
    + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
  let page;
  try { page = await api(path); } catch (e) { failure(card, e); return; }
  const list = el("ul", { id: "members" });
  for (const id of page.members) {
    list.append(el("li", {}, el("a", { class: "link", href: "#customer/" + encodeURIComponent(id), text: id })));
  }
  const parts = [el("h2", { text: "Members of " + grid + " / " + segment }), list];
  if (page.next_cursor) {
    parts.push(el("button", { type: "button", text: "Next 100", on: { onclick: () => showMembers(grid, segment, page.next_cursor) } }));
  }
  card.replaceChildren(...parts);
}

// -- crosstab of two grids: drawn only when the API offers one (its OpenAPI document lists the route) -------
async function findCrosstab() {
  if (REPORT) return REPORT.crosstab || null;
  try {
    const doc = await api("/openapi.json");
    const path = Object.keys(doc.paths || {}).find((p) => p.includes("crosstab"));
    if (!path) return null;
    const params = ((doc.paths[path].get || {}).parameters || []).filter((p) => p.in === "query" && p.required);
    return { path, query: params.map((p) => p.name) };
  } catch (e) { return null; }
}

function crosstabUrl(spec, a, b) {
  let path = spec.path;
  const slots = path.match(/\{[^}]+\}/g) || [];
  const values = [a, b];
  slots.forEach((slot, i) => { path = path.replace(slot, encodeURIComponent(values[i] || "")); });
  const rest = values.slice(slots.length);
  const query = spec.query.slice(0, rest.length).map((name, i) => name + "=" + encodeURIComponent(rest[i]));
  return path + (query.length ? "?" + query.join("&") : "");
}

function crosstabCells(answer) {
  // Accepts the shapes a crosstab may take: [{row, column, customers}] / [[row, column, n]] cells, or a
  // nested {row: {column: n}} mapping (under `cells`, `matrix`, `counts` or at the top).
  const source = answer.cells || answer.matrix || answer.counts || answer;
  const cells = [];
  if (Array.isArray(source)) {
    for (const c of source) {
      if (Array.isArray(c)) cells.push([String(c[0]), String(c[1]), Number(c[2])]);
      else {
        const vals = Object.values(c);
        const n = c.customers ?? c.count ?? c.value ?? vals.find((v) => typeof v === "number");
        const strs = vals.filter((v) => typeof v === "string");
        cells.push([String(strs[0]), String(strs[1]), Number(n)]);
      }
    }
  } else if (source && typeof source === "object") {
    for (const [r, row] of Object.entries(source)) {
      if (row && typeof row === "object") {
        for (const [col, v] of Object.entries(row)) {
          const n = typeof v === "number" ? v : v && (v.customers ?? v.count);
          if (typeof n === "number") cells.push([r, col, n]);
        }
      }
    }
  }
  return cells;
}

function viewCrosstab() {
  const app = document.getElementById("app");
  if (!state.crosstab) { app.replaceChildren(el("p", { class: "note", text: "This API offers no crosstab." })); return; }
  const grids = Object.keys(state.grids);
  const a = el("select", { id: "cross-a" }), b = el("select", { id: "cross-b" });
  grids.forEach((g) => { a.append(el("option", { value: g, text: g })); b.append(el("option", { value: g, text: g })); });
  a.value = state.crossA || "lifecycle"; b.value = state.crossB || (grids.includes("rfm") ? "rfm" : grids[1]);
  const draw = async () => {
    state.crossA = a.value; state.crossB = b.value;
    let answer;
    try { answer = await api(crosstabUrl(state.crosstab, a.value, b.value)); } catch (e) {
      failure(document.getElementById("chart-crosstab"), e); return;
    }
    const cells = crosstabCells(answer);
    const rows = [...new Set(cells.map((c) => c[0]))], cols = [...new Set(cells.map((c) => c[1]))];
    const max = cells.reduce((m, c) => Math.max(m, c[2]), 0);
    const c = chart("chart-crosstab");
    c.setOption({
      animation: !REPORT,
      tooltip: { formatter: (p) => p.data[3] + " × " + p.data[4] + ": " + fmtInt(p.data[2]) },
      grid: { left: 130, right: 20, top: 10, bottom: 100 },
      xAxis: { type: "category", data: cols, axisLabel: { rotate: 40 }, name: b.value },
      yAxis: { type: "category", data: rows, inverse: true, name: a.value },
      visualMap: { dimension: 2, min: 0, max: Math.max(1, max), orient: "horizontal", left: "center", bottom: 0, itemHeight: 120,
        inRange: { color: ["#eef6ee", "#2e7d32"] } },
      series: [{ name: "customers", type: "heatmap", label: { show: true, formatter: (p) => fmtInt(p.data[2]) },
        data: cells.map(([r, col, n]) => [cols.indexOf(col), rows.indexOf(r), n, r, col]) }],
    });
  };
  a.addEventListener("change", draw); b.addEventListener("change", draw);
  app.replaceChildren(el("div", { class: "card" }, el("h2", { text: "Customers by the segments of two grids" }),
    el("div", { class: "controls" }, el("label", { text: "Rows " }, a), el("label", { text: "Columns " }, b)),
    el("div", { id: "chart-crosstab", class: "chart" })));
  draw();
}

// -- one customer: current segments with their why, the timeline of transitions ---------------------------
function viewCustomer(id) {
  const app = document.getElementById("app");
  const input = el("input", { id: "customer-id", type: "search", placeholder: "customer id", size: "30" });
  input.value = id || "";
  const form = el("form", { class: "controls" }, el("label", { text: "Customer " }, input),
    el("button", { type: "submit", text: "Show" }));
  form.addEventListener("submit", (e) => { e.preventDefault(); location.hash = "#customer/" + encodeURIComponent(input.value.trim()); });
  app.replaceChildren(el("div", { class: "card" }, form), el("div", { id: "customer" }));
  if (id) drawCustomer(id);
}

function why(entry) {
  return entry ? Object.entries(entry.why || {}).map(([k, v]) => k + "=" + v).join(", ") : "";
}

async function drawCustomer(id) {
  const box = document.getElementById("customer");
  let profile, history;
  try {
    [profile, history] = await Promise.all([
      api("/customers/" + encodeURIComponent(id)), api("/customers/" + encodeURIComponent(id) + "/history")]);
  } catch (e) {
    box.replaceChildren(el("p", { class: "error", text: e.status === 404 ? "Unknown customer " + id
      : e.status === 403 ? "This key lacks the scope profiles:read (403)." : "Could not load: " + e.message }));
    return;
  }
  const last = {};
  for (const e of history.entries) last[e.grid] = e;
  const rows = Object.entries(profile.segments).map(([grid, segment]) => {
    const e = last[grid] && last[grid].to_segment === segment ? last[grid] : null;
    return el("tr", { "data-grid": grid }, el("td", { text: grid }), el("td", { "data-field": "segment", text: segment || "—" }),
      el("td", { text: e ? e.effective_at.replace("T", " ").replace("+00:00", "Z") : "" }),
      el("td", { class: "why", text: why(e) }));
  });
  const m = profile.metrics;
  const facts = el("p", {}, "Orders " + fmtInt(m.orders) + ", net " + fmtMoney(m.net) + ", refunds " + fmtInt(m.refunds)
    + "; RFM " + [profile.rfm.r, profile.rfm.f, profile.rfm.m].map((x) => x ?? "-").join("-")
    + "; as of " + (profile.freshness.clock || "—") + (history.trimmed ? " (history trimmed)" : ""));
  const timeline = el("tbody");
  for (const e of [...history.entries].reverse()) {
    timeline.append(el("tr", {}, el("td", { text: e.effective_at }), el("td", { text: e.grid }),
      el("td", { text: (e.from_segment || "—") + " → " + (e.to_segment || "—") }), el("td", { text: e.cause }),
      el("td", { class: "why", text: why(e) })));
  }
  box.replaceChildren(
    el("div", { class: "card" }, el("h2", { text: "Customer " + id }), facts,
      el("table", { id: "customer-segments" }, el("thead", {}, el("tr", {}, el("th", { text: "grid" }),
        el("th", { text: "segment" }), el("th", { text: "since" }), el("th", { text: "why" }))), el("tbody", {}, ...rows))),
    el("div", { class: "card" }, el("h2", { text: "Timeline of transitions" }), el("div", { id: "chart-timeline", class: "chart small" }),
      el("table", { id: "customer-history" }, el("thead", {}, el("tr", {}, el("th", { text: "effective" }), el("th", { text: "grid" }),
        el("th", { text: "move" }), el("th", { text: "cause" }), el("th", { text: "why" }))), timeline)));
  const grids = [...new Set(history.entries.map((e) => e.grid))];
  const c = chart("chart-timeline");
  c.setOption({
    tooltip: { formatter: (p) => p.data[0] + "<br>" + p.data[1] + ": " + (p.data[3] || "—") + " → " + (p.data[2] || "—") },
    grid: { left: 120, right: 30, top: 20, bottom: 40 },
    xAxis: { type: "time" },
    yAxis: { type: "category", data: grids },
    series: [{ name: "transitions", type: "scatter", symbolSize: 10,
      data: history.entries.map((e) => [e.effective_at, e.grid, e.to_segment, e.from_segment]),
      label: { show: true, position: "top", fontSize: 10, formatter: (p) => p.data[2] || "—" } }],
  });
}

// -- definitions: the version served and stored, and who a candidate file would move ----------------------
async function viewDefinitions() {
  const app = document.getElementById("app");
  let info;
  try { info = await api("/definitions"); } catch (e) { failure(app, e); return; }
  const file = el("input", { id: "candidate", type: "file", accept: ".yaml,.yml,text/yaml" });
  const limit = el("input", { id: "limit", type: "number", min: "1", max: "1000000", value: "20000" });
  const go = el("button", { id: "preview", type: "button", text: "Preview" });
  go.addEventListener("click", async () => {
    const box = document.getElementById("preview-result");
    if (!file.files.length) { box.replaceChildren(el("p", { class: "error", text: "Choose a definitions file." })); return; }
    box.replaceChildren(el("p", { class: "note", text: "Re-segmenting stored customers…" }));
    try {
      const answer = await api("/definitions/preview?limit=" + encodeURIComponent(limit.value),
        { method: "POST", headers: { "Content-Type": "application/yaml" }, body: await file.files[0].text() });
      drawPreview(answer);
    } catch (e) { failure(box, e); }
  });
  app.replaceChildren(
    el("div", { class: "card" }, el("h2", { text: "Definitions" }),
      el("table", { id: "definitions-info" }, el("tbody", {},
        el("tr", {}, el("th", { text: "namespace" }), el("td", { text: info.namespace })),
        el("tr", {}, el("th", { text: "version served (API)" }), el("td", { "data-field": "served", text: info.served_version })),
        el("tr", {}, el("th", { text: "version the namespace was built with" }), el("td", { text: info.stored_version || "—" })),
        el("tr", {}, el("th", { text: "base currency" }), el("td", { text: info.currency })),
        el("tr", {}, el("th", { text: "customers" }), el("td", { text: fmtInt(info.customers) })),
        el("tr", {}, el("th", { text: "grids" }), el("td", { text: Object.entries(info.grids)
          .map(([g, s]) => g + " (" + s.length + ")").join(", ") }))))),
    el("div", { class: "card" }, el("h2", { text: "Preview a candidate file: who would move" }),
      el("div", { class: "controls" }, file, el("label", { text: "customers to examine " }, limit), go),
      el("p", { class: "note", text: "Re-segments stored customers under the candidate at their own clock, as "
        + "`segstream definitions diff` does, without writing; up to the number given (SCAN order) and within "
        + "half the API's request timeout. "
        + "The full answer: segstream definitions diff FILE." }),
      el("div", { id: "preview-result" })));
}

function drawPreview(answer) {
  const box = document.getElementById("preview-result");
  if (!answer.valid) {
    box.replaceChildren(el("p", { id: "preview-summary", class: "error", text: "This file cannot be used: " + answer.error }));
    return;
  }
  const parts = [el("p", { id: "preview-summary", text: "Candidate " + answer.candidate_version + " vs "
    + answer.current_version + ": " + fmtInt(answer.examined) + " of " + fmtInt(answer.total)
    + " customers examined" + (answer.complete ? " (all)" : " (a sample)") + "." })];
  const grids = Object.keys(answer.grids);
  if (!grids.length) parts.push(el("p", { text: "Nobody would move." }));
  for (const grid of grids) {
    const body = el("tbody");
    for (const c of answer.grids[grid]) {
      const who = el("td", {});
      c.examples.forEach((id, i) => {
        if (i) who.append(", ");
        who.append(el("a", { class: "link", href: "#customer/" + encodeURIComponent(id), text: id }));
      });
      body.append(el("tr", {}, el("td", { text: c.from }), el("td", { text: c.to }),
        el("td", { class: "num", text: fmtInt(c.customers) }), who));
    }
    parts.push(el("h3", { text: grid + ": " + fmtInt(answer.moved[grid]) + " would move" }),
      el("table", { class: "preview", "data-grid": grid }, el("thead", {}, el("tr", {}, el("th", { text: "from" }),
        el("th", { text: "to" }), el("th", { class: "num", text: "customers" }), el("th", { text: "for example" }))), body));
  }
  box.replaceChildren(...parts);
}

start();
