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
    const key = decodeURIComponent(path); // the report stores its answers under unencoded URLs
    if (Object.prototype.hasOwnProperty.call(REPORT.responses, key)) return REPORT.responses[key];
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
function fmtPercent(v) { return v === null || v === undefined ? "—" : DEC.format(v * 100) + " %"; }
function fmtDecimal(v) { return v === null || v === undefined ? "—" : DEC.format(v); }
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
const state = { grids: {}, grid: "lifecycle", from: "", to: "", crosstabs: [] };

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
  state.crosstabs = await keptCrosstabs();
  document.getElementById("nav-crosstab").hidden = !state.crosstabs.length;
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
    el("div", { class: "card" }, el("h2", { text: "KPIs per segment" }), el("div", { id: "kpis" }),
      el("p", { class: "note", text: "Now: the segment's members today. Period: purchases and net revenue "
        + "during the days, share of the grid's revenue, conversion of the period's entrants (bought within "
        + "the definitions' conversion_days; entries near the end may still convert), churn (moves into the "
        + "churn segment / members at the start); retention and purchase frequency of the last calendar "
        + "retention period wholly inside the days (hover a cell for every period)." })),
  );
  if (REPORT && state.crosstabs.length) app.append(crosstabCard());
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
  const [moves, kpis, periodKpis] = await Promise.allSettled([
    api("/grids/" + encodeURIComponent(grid) + "/moves" + period()),
    api("/grids/" + encodeURIComponent(grid) + "/segments"),
    api("/grids/" + encodeURIComponent(grid) + "/kpis" + period()),
  ]);
  if (!current()) return;
  if (moves.status === "fulfilled") drawMoves(moves.value); else failure(document.getElementById("chart-moves"), moves.reason);
  if (kpis.status !== "fulfilled") failure(document.getElementById("kpis"), kpis.reason);
  else if (periodKpis.status !== "fulfilled") failure(document.getElementById("kpis"), periodKpis.reason);
  else drawKpis(kpis.value, periodKpis.value, sizes);
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

// The period's columns: [data-field, header, value of (segment KPIs, last retention period's cohort)].
const PERIOD_COLUMNS = [
  ["period_orders", "orders", (k) => fmtInt(k.orders)],
  ["period_revenue", "net revenue", (k) => fmtMoney(k.revenue)],
  ["revenue_share", "revenue share", (k) => fmtPercent(k.revenue_share)],
  ["period_average_basket", "average basket", (k) => fmtMoney(k.average_basket)],
  ["conversion", "conversion", (k) => fmtPercent(k.conversion)],
  ["churn_rate", "churn rate", (k) => fmtPercent(k.churn_rate)],
  ["retention", "retention", (k, c) => fmtPercent(c && c.retention)],
  ["purchase_frequency", "purchase frequency", (k, c) => fmtDecimal(c && c.purchase_frequency)],
];

function drawKpis(answer, kpis, sizes) {
  const last = kpis.periods.length ? kpis.periods[kpis.periods.length - 1] : null;
  const days = (kpis.first_day || "…") + " to " + (kpis.last_day || "…");
  const cohort = last ? "; retention, frequency: " + last.period
    : "; no whole " + kpis.retention_period + " inside: no retention";
  const top = el("tr", {}, el("th", { rowspan: "2", text: "segment" }),
    el("th", { colspan: "4", class: "group", text: "now (members today)" }),
    el("th", { colspan: String(PERIOD_COLUMNS.length), class: "group", id: "kpi-period", text: "period " + days + cohort }),
    el("th", { rowspan: "2", text: "size per day",
      title: "customers at the end of each day, " + (sizes.days[0] || "") + " to " + (sizes.days[sizes.days.length - 1] || "") }));
  const head = el("tr", {}, ...["customers", "revenue", "orders", "average basket"].map((t) => el("th", { class: "num", text: t })),
    ...PERIOD_COLUMNS.map(([, text]) => el("th", { class: "num", text })));
  const body = el("tbody");
  for (const [segment, k] of Object.entries(answer.segments)) {
    const name = REPORT ? el("span", { text: segment })
      : el("a", { class: "link", text: segment, on: { onclick: () => showMembers(answer.grid, segment, null) } });
    const p = kpis.segments[segment] || {};
    const c = last ? last.segments[segment] : null;
    const every = kpis.periods.map((q) => {
      const x = q.segments[segment] || {};
      return q.period + ": retention " + fmtPercent(x.retention) + ", frequency " + fmtDecimal(x.purchase_frequency)
        + " (" + fmtInt(x.buyers) + " of " + fmtInt(x.customers_at_start) + ")";
    }).join("\n");
    body.append(el("tr", { "data-segment": segment }, el("td", {}, name),
      el("td", { class: "num", "data-field": "customers", text: fmtInt(k.customers) }),
      el("td", { class: "num", "data-field": "revenue", text: fmtMoney(k.revenue) }),
      el("td", { class: "num", "data-field": "orders", text: fmtInt(k.orders) }),
      el("td", { class: "num", "data-field": "average_basket", text: fmtMoney(k.average_basket) }),
      ...PERIOD_COLUMNS.map(([field, , value]) => {
        const cell = el("td", { class: "num period", "data-field": field, text: value(p, c) });
        if ((field === "retention" || field === "purchase_frequency") && every) cell.title = every;
        return cell;
      }),
      el("td", {}, sparkline(sizes.sizes[segment] || []))));
  }
  document.getElementById("kpis").replaceChildren(el("table", { id: "kpi-table" }, el("thead", {}, top, head), body));
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

// -- crossing of two grids: a heatmap for the pairs the definitions keep (`kpis.crosstabs`), else "not kept" ---
async function keptCrosstabs() {
  if (REPORT) return REPORT.crosstabs || [];
  try { return (await api("/definitions")).crosstabs || []; } catch (e) { return []; }
}

function isKept(a, b) {
  return state.crosstabs.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
}

function crosstabCard() {
  const grids = Object.keys(state.grids);
  const a = el("select", { id: "cross-a" }), b = el("select", { id: "cross-b" });
  grids.forEach((g) => { a.append(el("option", { value: g, text: g })); b.append(el("option", { value: g, text: g })); });
  a.value = state.crossA || state.crosstabs[0][0]; b.value = state.crossB || state.crosstabs[0][1];
  const kept = state.crosstabs.map(([x, y]) => x + " × " + y).join(", ");
  const note = el("p", { id: "crosstab-note", class: "note" });
  const box = el("div", { id: "chart-crosstab", class: "chart tall" });
  const notAvailable = (text) => {
    const existing = echarts.getInstanceByDom(box);
    if (existing) existing.dispose();
    delete charts["chart-crosstab"];
    box.hidden = true;
    note.className = "error";
    note.textContent = text;
  };
  const draw = async () => {
    state.crossA = a.value; state.crossB = b.value;
    if (!isKept(a.value, b.value)) {
      notAvailable("Not available: the crossing " + a.value + " × " + b.value + " is not kept by the definitions "
        + "(kpis.crosstabs: " + kept + ").");
      return;
    }
    let answer;
    try { answer = await api("/crosstab/" + encodeURIComponent(a.value) + "/" + encodeURIComponent(b.value)); } catch (e) {
      notAvailable(e.status === 404 ? "Not available: " + e.message : "Could not load: " + e.message);
      return;
    }
    if (answer.rows !== a.value || answer.columns !== b.value) return; // superseded by a newer choice
    box.hidden = false;
    note.className = "note";
    note.textContent = "Customers now in both segments (colour and first line) and their net revenue (second "
      + "line); hover a cell for orders and average basket. Kept pairs: " + kept + ".";
    drawCrosstab(answer);
  };
  a.addEventListener("change", draw); b.addEventListener("change", draw);
  const card = el("div", { class: "card" }, el("h2", { text: "Customers and revenue by the segments of two grids (now)" }),
    el("div", { class: "controls" }, el("label", { text: "Rows " }, a), el("label", { text: "Columns " }, b)), note, box);
  setTimeout(draw, 0); // once the card is in the page (the chart needs its size)
  return card;
}

function drawCrosstab(answer) {
  const rows = Object.keys(answer.cells);
  const cols = [];
  for (const r of rows) for (const col of Object.keys(answer.cells[r])) if (!cols.includes(col)) cols.push(col);
  // [column index, row index, customers, row, column, orders, revenue, basket, label]
  const data = [];
  for (const r of rows) {
    for (const [col, cell] of Object.entries(answer.cells[r])) {
      data.push([cols.indexOf(col), rows.indexOf(r), cell.customers, r, col, fmtInt(cell.orders), fmtMoney(cell.revenue),
        fmtMoney(cell.average_basket), fmtInt(cell.customers) + "\n" + fmtMoney(cell.revenue)]);
    }
  }
  const max = data.reduce((m, d) => Math.max(m, d[2]), 0);
  const c = chart("chart-crosstab");
  c.setOption({
    animation: !REPORT,
    tooltip: { formatter: (p) => p.data[3] + " × " + p.data[4] + ": " + fmtInt(p.data[2]) + " customers, "
      + p.data[5] + " orders, revenue " + p.data[6] + ", average basket " + p.data[7] },
    grid: { left: 110, right: 20, top: 10, bottom: 100 },
    xAxis: { type: "category", data: cols, axisLabel: { rotate: 40 }, name: answer.columns },
    yAxis: { type: "category", data: rows, inverse: true, name: answer.rows },
    visualMap: { dimension: 2, min: 0, max: Math.max(1, max), orient: "horizontal", left: "center", bottom: 0, itemHeight: 120,
      inRange: { color: ["#eef6ee", "#2e7d32"] } },
    series: [{ name: "customers", type: "heatmap", data, label: { show: true, fontSize: 11, lineHeight: 16, color: "#1d2733", textBorderColor: "#ffffffcc", textBorderWidth: 3,
      formatter: (p) => p.data[8] } }],
  });
}

function viewCrosstab() {
  const app = document.getElementById("app");
  if (!state.crosstabs.length) {
    app.replaceChildren(el("p", { class: "note", text: "The definitions keep no crossing of two grids (kpis.crosstabs)." }));
    return;
  }
  app.replaceChildren(crosstabCard());
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

function why(reasons) {
  return Object.entries(reasons || {}).map(([k, v]) => k + "=" + v).join(", ");
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
      el("td", { class: "why", text: why(history.why[grid]) }));  // as of the clock, derived from the state
  });
  const m = profile.metrics;
  const facts = el("p", {}, "Orders " + fmtInt(m.orders) + ", net " + fmtMoney(m.net) + ", refunds " + fmtInt(m.refunds)
    + "; RFM " + [profile.rfm.r, profile.rfm.f, profile.rfm.m].map((x) => x ?? "-").join("-")
    + "; as of " + (profile.freshness.clock || "—") + (history.trimmed ? " (history trimmed)" : ""));
  const timeline = el("tbody");
  for (const e of [...history.entries].reverse()) {
    timeline.append(el("tr", {}, el("td", { text: e.effective_at }), el("td", { text: e.grid }),
      el("td", { text: (e.from_segment || "—") + " → " + (e.to_segment || "—") }), el("td", { text: e.cause })));
  }
  box.replaceChildren(
    el("div", { class: "card" }, el("h2", { text: "Customer " + id }), facts,
      el("table", { id: "customer-segments" }, el("thead", {}, el("tr", {}, el("th", { text: "grid" }),
        el("th", { text: "segment" }), el("th", { text: "since" }), el("th", { text: "why" }))), el("tbody", {}, ...rows))),
    el("div", { class: "card" }, el("h2", { text: "Timeline of transitions" }), el("div", { id: "chart-timeline", class: "chart small" }),
      el("table", { id: "customer-history" }, el("thead", {}, el("tr", {}, el("th", { text: "effective" }), el("th", { text: "grid" }),
        el("th", { text: "move" }), el("th", { text: "cause" }))), timeline)));
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
