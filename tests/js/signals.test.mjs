// The Signals tab's pure parts (static/js/signals/format.js and plot.js): words for horizons,
// percentages, the verdict's reason and pattern names; the charts' scales and thinning.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  amount, closeWord, horizonText, hoursText, intervalSeconds, intervalText, leanOf, patternName, percent, reasonParts, signedPercent,
} from "../../static/js/signals/format.js";
import {
  envelope, equityPlot, gridTicks, linear, linePath, niceStep, reliabilityDomain, reliabilityDots, stripDomain,
} from "../../static/js/signals/plot.js";

test("intervals and horizons read as spans of time", () => {
  assert.equal(intervalSeconds("1h"), 3600);
  assert.equal(intervalSeconds("15m"), 900);
  assert.equal(intervalSeconds("1d"), 86400);
  for (const bad of ["", "h", "0h", "1w", null, undefined, "1 h"]) assert.equal(intervalSeconds(bad), null, String(bad));
  assert.equal(closeWord("1h"), "hourly");
  assert.equal(closeWord("1d"), "daily");
  assert.equal(closeWord("4h"), "4-hour");
  assert.equal(closeWord("15m"), "15-minute");
  assert.equal(closeWord("1m"), "1-minute");
  assert.equal(closeWord(null), "next");
  assert.equal(hoursText(1), "1 hour");
  assert.equal(hoursText(4), "4 hours");
  assert.equal(hoursText(24), "1 day");
  assert.equal(hoursText(48), "2 days");
  assert.equal(hoursText(36), "36 hours");
  assert.equal(hoursText(0.25), "15 minutes");
  assert.equal(hoursText(0), "");
  // horizon_hours wins; else bars times the interval; else bars.
  assert.equal(horizonText({ horizon: 4, interval: "1h", horizon_hours: 4 }), "4 hours");
  assert.equal(horizonText({ horizon: 4, interval: "1h" }), "4 hours");
  assert.equal(horizonText({ horizon: 6, interval: "4h" }), "1 day");
  assert.equal(horizonText({ horizon: 3, interval: "odd" }), "3 bars");
  assert.equal(horizonText({}), "");
});

test("percentages, signed changes and intervals", () => {
  assert.equal(percent(0.5423), "54.2%");
  assert.equal(percent(0.5423, 0), "54%");
  assert.equal(percent(null), "–");
  assert.equal(percent(Number.NaN), "–");
  assert.equal(percent("0.5"), "–"); // strings are not numbers the API sends
  assert.equal(signedPercent(0.123), "+12.3%");
  assert.equal(signedPercent(-0.04), "\u22124.0%");
  assert.equal(signedPercent(0.00001), "0.0%"); // no sign on a change that rounds to nothing
  assert.equal(intervalText([0.491, 0.55]), "49.1\u201355.0%");
  assert.equal(intervalText(null), "");
  assert.equal(intervalText([0.4, null]), "");
});

test("the lean is the probability of the direction called, not always of up", () => {
  assert.deepEqual(leanOf({ direction: "up", probability_up: 0.58 }), { direction: "up", probability: 0.58 });
  const down = leanOf({ direction: "down", probability_up: 0.42 });
  assert.equal(down.direction, "down");
  assert.ok(Math.abs(down.probability - 0.58) < 1e-12);
  assert.equal(leanOf({ probability_up: 0.7 }).direction, "up"); // no direction sent: from p
});

test("the verdict's reason splits into sentences without its lead-in", () => {
  const reason = "no edge found: Brier 0.2501 is not significantly below base rate's 0.2499 (one-sided DM p = 0.640, "
    + "needs p < 0.05); hit rate 50.8% (95% CI 49.9% to 51.7%) is not clearly above base rate's 51.2%.";
  assert.deepEqual(reasonParts(reason), [
    "Brier 0.2501 is not significantly below base rate's 0.2499 (one-sided DM p = 0.640, needs p < 0.05)",
    "Hit rate 50.8% (95% CI 49.9% to 51.7%) is not clearly above base rate's 51.2%",
  ]);
  assert.deepEqual(reasonParts("edge found: hit rate 55.0% above persistence's 50.1%."), ["Hit rate 55.0% above persistence's 50.1%"]);
  assert.deepEqual(reasonParts(""), []);
  assert.deepEqual(reasonParts(null), []);
});

test("pattern names and amounts", () => {
  assert.equal(patternName("CDLENGULFING"), "Engulfing");
  assert.equal(patternName("CDL3WHITESOLDIERS"), "Three white soldiers");
  assert.equal(patternName("CDLNEWONE"), "Newone");
  assert.equal(amount("12345.678901"), "12,345.67");
  assert.equal(amount("5"), "5.00");
  assert.equal(amount("0.5", 0), "0");
  assert.equal(amount("x"), "–");
});

test("a linear scale maps the domain onto the range, and a flat domain onto its middle", () => {
  const s = linear([0, 10], [100, 0]);
  assert.equal(s(0), 100);
  assert.equal(s(5), 50);
  assert.equal(linear([3, 3], [0, 10])(3), 5);
});

test("the reliability axes zoom to the data, symmetric about 50%, equal on both axes", () => {
  assert.deepEqual(reliabilityDomain([]), [0.4, 0.6]); // at least 10 points either side
  const bins = [
    { predicted: 0.47, observed: 0.52, count: 100 },
    { predicted: 0.55, observed: 0.63, count: 40 },
    { predicted: 0.95, observed: 0.1, count: 0 }, // an empty bin does not stretch the axes
  ];
  assert.deepEqual(reliabilityDomain(bins), [0.35, 0.65]);
  assert.deepEqual(reliabilityDomain(bins, [{ predicted: 0.2, observed: 0.5, count: 3 }]), [0.2, 0.8]);
  assert.deepEqual(reliabilityDomain([{ predicted: 0, observed: 1, count: 1 }]), [0, 1]);
  assert.deepEqual(gridTicks([0.35, 0.65], 0.05, 5), [0.4, 0.5, 0.6]);
  assert.deepEqual(gridTicks([0.4, 0.6], 0.05, 5), [0.4, 0.45, 0.5, 0.55, 0.6]);
  assert.deepEqual(gridTicks([0, 1], 0.05, 5), [0, 0.25, 0.5, 0.75, 1]); // the top is labelled too
  assert.deepEqual(gridTicks([0, 0.8], 0.05, 6), [0, 0.2, 0.4, 0.6, 0.8]);
});

test("reliability dots sit on the diagonal when calibrated, sized by their counts", () => {
  const box = { width: 100, height: 100, pad: { top: 0, right: 0, bottom: 0, left: 0 } };
  const dots = reliabilityDots([
    { predicted: 0.5, observed: 0.5, count: 400 },
    { predicted: 0.6, observed: 0.6, count: 100 },
    { predicted: 0.6, observed: null, count: 5 },
  ], box, [0.4, 0.6]);
  assert.equal(dots.length, 2);
  assert.deepEqual([dots[0].cx, dots[0].cy], [50, 50]);
  assert.deepEqual([dots[1].cx, dots[1].cy], [100, 0]); // y grows downwards in SVG
  assert.equal(dots[0].r, 7);
  assert.ok(dots[1].r > 2.5 && dots[1].r < 7);
});

test("thinning keeps the first, the last and each bucket's extremes (a drawdown survives)", () => {
  const values = Array.from({ length: 1000 }, (_, i) => 1 + i / 1000);
  values[501] = 0.2; // a crash between two kept points of a plain stride
  const kept = envelope(values, 50);
  assert.ok(kept.length <= 102);
  assert.equal(kept[0], 0);
  assert.equal(kept.at(-1), 999);
  assert.ok(kept.includes(501));
  assert.deepEqual(envelope([1, 2, 3], 50), [0, 1, 2]);
  assert.equal(linePath([[0, 1], [2.345, 3]]), "M0 1L2.3 3");
});

test("the equity plot puts both curves on one scale, with the start line and return ticks", () => {
  const box = { width: 200, height: 100, pad: { top: 0, right: 0, bottom: 0, left: 0 } };
  const points = [
    { i: 0, strategy: 1, buy_hold: 1 },
    { i: 1, strategy: 1.1, buy_hold: 0.9 },
    { i: 2, strategy: 1.2, buy_hold: 0.8 },
  ];
  const plot = equityPlot(points, box);
  assert.ok(plot.strategy.startsWith("M0 ") && plot.buyHold.startsWith("M0 "));
  assert.ok(Math.abs(plot.last.strategy - 0.2) < 1e-9 && Math.abs(plot.last.buyHold + 0.2) < 1e-9);
  assert.ok(plot.base > 0 && plot.base < 100);
  assert.ok(plot.ticks.some((t) => t.value === 0));
  assert.ok(plot.ticks.every((t) => t.y >= 0 && t.y <= 100));
  assert.equal(equityPlot([points[0]], box), null);
  assert.equal(equityPlot(null, box), null);
  assert.equal(niceStep(0.03), 0.05);
  assert.equal(niceStep(0.1), 0.1);
  assert.equal(niceStep(0.0012), 0.002);
});

test("the hit-rate strip covers every rate, bound and the baseline on a 5-point grid", () => {
  assert.deepEqual(stripDomain([0.503, 0.512, 0.49, 0.535]), [0.45, 0.55]);
  assert.deepEqual(stripDomain([0.5, 0.3, 0.71]), [0.25, 0.75]);
  assert.deepEqual(stripDomain([null]), [0.4, 0.6]);
});
