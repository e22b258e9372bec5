// Geometry for the track record's two SVG charts: numbers in, coordinates and path data out.
// Pure functions, no DOM (tests/js/signals.test.mjs); static/js/signals/charts.js draws them.

/** A linear map from [d0, d1] onto [r0, r1]; a zero-width domain maps to the range's middle. */
export function linear([d0, d1], [r0, r1]) {
  const span = d1 - d0;
  return span ? (v) => r0 + ((v - d0) / span) * (r1 - r0) : () => (r0 + r1) / 2;
}

const finite = (v) => typeof v === "number" && Number.isFinite(v);
const round = (v) => Math.round(v * 10) / 10;

/** The plot area of a box: {width, height, pad: {top, right, bottom, left}} → x and y ranges. */
export function area({ width, height, pad }) {
  return { x: [pad.left, width - pad.right], y: [height - pad.bottom, pad.top] };
}

// Predictions sit close to 50%: drawn on 0–100% they would all land in one blob, so the axes
// zoom to the data, symmetric about 50% and equal on both axes (the diagonal stays y = x).
// Steps of 5 points keep the ticks round; 10 points either side is the least shown.
const RELIABILITY_STEP = 0.05;
const RELIABILITY_MIN_HALF = 0.1;

/** The domain both reliability axes share: [0.5 − h, 0.5 + h], covering every bin with data. */
export function reliabilityDomain(...series) {
  let half = RELIABILITY_MIN_HALF;
  for (const bins of series) {
    for (const bin of bins ?? []) {
      if (!(bin?.count > 0)) continue;
      for (const v of [bin.predicted, bin.observed]) if (finite(v)) half = Math.max(half, Math.abs(v - 0.5));
    }
  }
  half = Math.min(0.5, Math.ceil(half / RELIABILITY_STEP - 1e-9) * RELIABILITY_STEP);
  return [round2(0.5 - half), round2(0.5 + half)];
}

const round2 = (v) => Math.round(v * 100) / 100;
/** Float noise off: 0.30000000000000004 → 0.3. */
const tidy = (v) => Number(v.toPrecision(12));

/** Ticks on the `step` grid from lo to hi, at most `most`: every 1, 2, 4, 5, 10 or 20 steps. */
export function gridTicks([lo, hi], step, most = 6) {
  const fits = (every) => Math.floor(hi / every + 1e-9) - Math.ceil(lo / every - 1e-9) + 1 <= most;
  const every = [1, 2, 4, 5, 10, 20].map((m) => m * step).find(fits) ?? hi - lo;
  const ticks = [];
  for (let k = Math.ceil(lo / every - 1e-9); k * every <= hi + 1e-9; k++) ticks.push(tidy(k * every));
  return ticks;
}

// The dots' radii grow with the square root of their bins' counts (area ∝ count).
const DOT_MIN = 2.5;
const DOT_MAX = 7;

/** The bins with data as dots: {cx, cy, r, predicted, observed, count}, in the box of `domain`. */
export function reliabilityDots(bins, box, domain) {
  const { x, y } = area(box);
  const sx = linear(domain, x);
  const sy = linear(domain, y);
  const usable = (bins ?? []).filter((b) => b?.count > 0 && finite(b.predicted) && finite(b.observed));
  const most = Math.max(1, ...usable.map((b) => b.count));
  return usable.map((b) => ({
    cx: round(sx(clamp(b.predicted, domain))),
    cy: round(sy(clamp(b.observed, domain))),
    r: round(DOT_MIN + (DOT_MAX - DOT_MIN) * Math.sqrt(b.count / most)),
    predicted: b.predicted,
    observed: b.observed,
    count: b.count,
  }));
}

const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));

/**
 * The indices of `values` worth drawing at `buckets` across: each bucket's lowest and highest
 * point, with the first and last. A drawdown survives the thinning; every k-th point would skip it.
 */
export function envelope(values, buckets) {
  const n = values.length;
  if (n <= buckets * 2) return values.map((_, i) => i);
  const keep = new Set([0, n - 1]);
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor((b * n) / buckets);
    const end = Math.floor(((b + 1) * n) / buckets);
    let lo = start;
    let hi = start;
    for (let i = start + 1; i < end; i++) {
      if (values[i] < values[lo]) lo = i;
      if (values[i] > values[hi]) hi = i;
    }
    keep.add(lo).add(hi);
  }
  return [...keep].sort((a, b) => a - b);
}

/** "M x y L x y …" through the points, a decimal each. */
export function linePath(points) {
  return points.map(([px, py], i) => `${i ? "L" : "M"}${round(px)} ${round(py)}`).join("");
}

// A bucket per two pixels of a phone-wide chart: finer than the eye, far fewer than the points.
const EQUITY_BUCKETS = 150;

/**
 * The equity chart: both curves as paths over the same scales, the start line (1.0, no gain)
 * and the y ticks as returns. Points are {i, strategy, buy_hold}, equity starting at 1.0.
 */
export function equityPlot(points, box) {
  const rows = (points ?? []).filter((p) => finite(p?.i) && finite(p.strategy) && finite(p.buy_hold));
  if (rows.length < 2) return null;
  const values = rows.flatMap((p) => [p.strategy, p.buy_hold]);
  let lo = Math.min(1, ...values);
  let hi = Math.max(1, ...values);
  const margin = (hi - lo) * 0.05 || 0.01;
  lo -= margin;
  hi += margin;
  const { x, y } = area(box);
  const sx = linear([rows[0].i, rows.at(-1).i], x);
  const sy = linear([lo, hi], y);
  const path = (key) => {
    const series = rows.map((p) => p[key]);
    return linePath(envelope(series, EQUITY_BUCKETS).map((k) => [sx(rows[k].i), sy(series[k])]));
  };
  const step = niceStep((hi - lo) / 4);
  const ticks = gridTicks([lo - 1, hi - 1], step, 6).map((r) => ({ value: r, y: round(sy(1 + r)) }));
  return {
    strategy: path("strategy"),
    buyHold: path("buy_hold"),
    base: round(sy(1)),
    ticks,
    last: { strategy: rows.at(-1).strategy - 1, buyHold: rows.at(-1).buy_hold - 1 },
  };
}

/** 1, 2 or 5 times a power of ten, at least `rough`. */
export function niceStep(rough) {
  if (!(rough > 0)) return 0.01;
  const power = 10 ** Math.floor(Math.log10(rough));
  for (const m of [1, 2, 5, 10]) if (m * power >= rough - 1e-12) return tidy(m * power);
  return 10 * power;
}


/** The hit-rate strip's axis: every rate, bound and the baseline inside, on a 5-point grid. */
export function stripDomain(values) {
  const usable = values.filter(finite);
  if (!usable.length) return [0.4, 0.6];
  const lo = Math.floor((Math.min(...usable) - 0.005) / RELIABILITY_STEP + 1e-9) * RELIABILITY_STEP;
  const hi = Math.ceil((Math.max(...usable) + 0.005) / RELIABILITY_STEP - 1e-9) * RELIABILITY_STEP;
  return [tidy(Math.max(0, lo)), tidy(Math.min(1, hi))];
}
