// The track record's charts as SVG drawn here (no library to fetch): the reliability diagram
// (predicted vs observed, with the diagonal a calibrated model would sit on) and the equity of
// the strategy against buy-and-hold. Geometry comes from plot.js; colours come from classes in
// signals.css (the CSP refuses style attributes), so the charts follow the theme by themselves.
import { percent, signedPercent } from "./format.js?v=630e7193a70d";
import { area, equityPlot, gridTicks, linear, reliabilityDomain, reliabilityDots, stripDomain } from "./plot.js?v=0fca4c00ebbf";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text != null) node.textContent = String(text);
  return node;
}

function canvas(box, label) {
  return svg("svg", { viewBox: `0 0 ${box.width} ${box.height}`, role: "img", "aria-label": label, class: "sig-svg" });
}

// Square, so the diagonal is at 45°: 100 units of data per side plus room for the tick labels.
const RELIABILITY_BOX = { width: 240, height: 240, pad: { top: 8, right: 10, bottom: 30, left: 38 } };
const RELIABILITY_TICK = 0.05;

/** The reliability diagram of the backtest's bins and the live ones, over one shared scale. */
export function drawReliability(host, backtest, live) {
  const box = RELIABILITY_BOX;
  const domain = reliabilityDomain(backtest, live);
  const { x, y } = area(box);
  const sx = linear(domain, x);
  const sy = linear(domain, y);
  const chart = canvas(box, "Reliability diagram: predicted against observed chance of a rise");
  for (const tick of gridTicks(domain, RELIABILITY_TICK, 5)) {
    chart.append(
      svg("line", { x1: x[0], x2: x[1], y1: sy(tick), y2: sy(tick), class: "sig-grid" }),
      svg("line", { x1: sx(tick), x2: sx(tick), y1: y[0], y2: y[1], class: "sig-grid" }),
      svg("text", { x: x[0] - 4, y: sy(tick) + 3, class: "sig-axis", "text-anchor": "end" }, percent(tick, 0)),
      svg("text", { x: sx(tick), y: y[0] + 13, class: "sig-axis", "text-anchor": "middle" }, percent(tick, 0)),
    );
  }
  chart.append(
    svg("line", { x1: x[0], y1: y[0], x2: x[1], y2: y[1], class: "sig-diagonal" }),
    svg("text", { x: (x[0] + x[1]) / 2, y: box.height - 2, class: "sig-axis", "text-anchor": "middle" }, "Predicted"),
    svg("text", { x: 10, y: (y[0] + y[1]) / 2, class: "sig-axis", "text-anchor": "middle", transform: `rotate(-90 10 ${(y[0] + y[1]) / 2})` }, "Observed"),
  );
  const dots = (bins, kind) => {
    for (const dot of reliabilityDots(bins, box, domain)) {
      const circle = svg("circle", { cx: dot.cx, cy: dot.cy, r: dot.r, class: `sig-dot sig-dot-${kind}` });
      circle.append(svg("title", {}, `${kind === "live" ? "Live" : "Backtest"}: predicted ${percent(dot.predicted)}, observed ${percent(dot.observed)} of ${dot.count}`));
      chart.append(circle);
    }
  };
  dots(backtest, "backtest");
  dots(live, "live");
  host.replaceChildren(chart);
}

const STRIP_ROW = 22;
const STRIP_PAD = { top: 14, right: 12, bottom: 18, left: 64 };

/** Each hit rate as a dot on its 95% interval, against the best baseline's (dashed). */
export function drawIntervals(host, rows, baseline) {
  const usable = rows.filter((row) => Number.isFinite(row.rate));
  const box = { width: 320, height: STRIP_PAD.top + STRIP_PAD.bottom + STRIP_ROW * usable.length, pad: STRIP_PAD };
  const domain = stripDomain([baseline, ...usable.flatMap((row) => [row.rate, ...(row.ci ?? [])])]);
  const { x, y } = area(box);
  const sx = linear(domain, x);
  const chart = canvas(box, "Hit rates with their 95% intervals against the best baseline");
  for (const tick of gridTicks(domain, 0.05, 6)) {
    chart.append(
      svg("line", { x1: sx(tick), x2: sx(tick), y1: y[1], y2: y[0], class: "sig-grid" }),
      svg("text", { x: sx(tick), y: box.height - 4, class: "sig-axis", "text-anchor": "middle" }, percent(tick, 0)),
    );
  }
  if (Number.isFinite(baseline)) {
    chart.append(
      svg("line", { x1: sx(baseline), x2: sx(baseline), y1: y[1] - 4, y2: y[0], class: "sig-diagonal" }),
      svg("text", { x: sx(baseline), y: 10, class: "sig-axis", "text-anchor": "middle" }, `baseline ${percent(baseline)}`),
    );
  }
  usable.forEach((row, k) => {
    const cy = STRIP_PAD.top + STRIP_ROW * (k + 0.5);
    chart.append(svg("text", { x: 0, y: cy + 4, class: "sig-axis sig-axis-label" }, row.label));
    if (Array.isArray(row.ci) && row.ci.every(Number.isFinite)) {
      chart.append(svg("line", { x1: sx(row.ci[0]), x2: sx(row.ci[1]), y1: cy, y2: cy, class: `sig-ci sig-ci-${row.kind}` }));
    }
    chart.append(svg("circle", { cx: sx(row.rate), cy, r: 4, class: `sig-dot sig-dot-${row.kind}` }));
  });
  host.replaceChildren(chart);
}

const EQUITY_BOX = { width: 320, height: 170, pad: { top: 8, right: 8, bottom: 8, left: 42 } };

/** The equity curves, or a line saying there is none; returns the final returns or null. */
export function drawEquity(host, points) {
  const box = EQUITY_BOX;
  const plot = equityPlot(points, box);
  if (!plot) {
    host.replaceChildren(Object.assign(document.createElement("p"), { className: "hint sig-small", textContent: "No equity curve yet." }));
    return null;
  }
  const { x } = area(box);
  const digits = plot.ticks.length > 1 && Math.abs(plot.ticks[1].value - plot.ticks[0].value) < 0.01 ? 1 : 0;
  const chart = canvas(box, `Equity: strategy ${signedPercent(plot.last.strategy)}, buy-and-hold ${signedPercent(plot.last.buyHold)}`);
  for (const tick of plot.ticks) {
    chart.append(
      svg("line", { x1: x[0], x2: x[1], y1: tick.y, y2: tick.y, class: "sig-grid" }),
      svg("text", { x: x[0] - 4, y: tick.y + 3, class: "sig-axis", "text-anchor": "end" }, tick.value ? signedPercent(tick.value, digits) : "0%"),
    );
  }
  chart.append(
    svg("line", { x1: x[0], x2: x[1], y1: plot.base, y2: plot.base, class: "sig-baseline" }),
    svg("path", { d: plot.buyHold, class: "sig-line sig-line-hold" }),
    svg("path", { d: plot.strategy, class: "sig-line sig-line-strategy" }),
  );
  host.replaceChildren(chart);
  return plot.last;
}
