// The track record (GET /api/signals/{market}/record): the live calls scored so far beside the
// walk-forward backtest's out-of-sample ones, each hit rate with its 95% interval against the
// best baseline's, then the calibration and equity charts. Text goes in with textContent only.
import { $, el } from "../lib/dom.js?v=7b1b01db74f5";
import { ms } from "../lib/time.js?v=ac20f7f0ed91";
import { drawEquity, drawIntervals, drawReliability } from "./charts.js?v=86423e464cbd";
import { hoursText, intervalSeconds, intervalText, percent, signedPercent } from "./format.js?v=630e7193a70d";

const count = (n) => (Number.isFinite(n) ? Number(n).toLocaleString("en-US") : "–");
const fixed = (v, places = 4) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(places) : "–");
const pValue = (p) => (typeof p !== "number" || !Number.isFinite(p) ? "–" : p < 0.001 ? "< 0.001" : p.toFixed(3));

function day(at) {
  const date = new Date(ms(at));
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" });
}

/** Bins as the charts take them; the model's report calls the mean "mean_predicted". */
const bins = (list) => (Array.isArray(list) ? list : []).map((b) => ({
  predicted: b?.predicted ?? b?.mean_predicted,
  observed: b?.observed,
  count: b?.count,
}));

/** Live, backtest and the best baseline side by side, a row per measure ("–": none yet). */
function renderTable(b, live) {
  const base = b.baseline ?? {};
  const scored = live?.scored > 0;
  const rows = [
    ["Hit rate", scored ? percent(live.hit_rate) : "–", percent(b.hit_rate), percent(base.hit_rate), "sig-big"],
    ["95% CI", scored ? intervalText(live.hit_rate_ci) || "–" : "–", intervalText(b.hit_rate_ci) || "–", "–", "sig-row-ci"],
    ["Brier", scored ? fixed(live.brier) : "–", fixed(b.brier), fixed(b.baseline_brier)],
    ["Calls", scored ? count(live.scored) : "0", count(b.points), count(b.points)],
  ];
  $("sig-table").replaceChildren(...rows.map(([label, ...cells]) => {
    const row = el("tr", cells.length > 3 ? cells.pop() : "");
    const head = el("th", "", label);
    head.scope = "row";
    row.append(head, ...cells.map((cell) => el("td", "", cell)));
    return row;
  }));
  $("sig-baseline-name").textContent = base.name ?? "";
}

/** The whole record; `source` marks a market whose history is simulated. */
export function renderRecord(record, { source } = {}) {
  const b = record?.backtest;
  if (!b) {
    $("sig-record").hidden = true;
    $("sig-record-note").textContent = record?.status === "training"
      ? "The model is training: its backtest shows here when it is done."
      : "No track record yet.";
    return;
  }
  $("sig-record-note").textContent = "";
  $("sig-record").hidden = false;
  const trained = b.trained_on ?? {};
  const seconds = intervalSeconds(trained.interval);
  const horizonHours = seconds && Number.isFinite(b.horizon) ? (b.horizon * seconds) / 3600 : null;
  renderTable(b, record.live);
  const wait = horizonHours ? ` A call is scored ${hoursText(horizonHours)} after it is made.` : "";
  $("sig-live-note").textContent = record.live?.scored > 0 ? "" : `No live calls scored yet.${wait}`;

  const live = record.live?.scored > 0 ? record.live : null;
  drawIntervals($("sig-intervals"), [
    { label: "Backtest", kind: "backtest", rate: b.hit_rate, ci: b.hit_rate_ci },
    ...(live ? [{ label: "Live", kind: "live", rate: live.hit_rate, ci: live.hit_rate_ci }] : []),
  ], b.baseline?.hit_rate);

  const verdict = b.edge
    ? `Edge found out of sample: Diebold–Mariano p ${pValue(b.dm_p)} against ${b.baseline?.name ?? "the best baseline"}.`
    : `No edge found out of sample: Diebold–Mariano p ${pValue(b.dm_p)} against ${b.baseline?.name ?? "the best baseline"} (an edge needs p < 0.05 and a hit rate clearly above it).`;
  $("sig-verdict").textContent = verdict;

  drawReliability($("sig-reliability"), bins(b.reliability), bins(record.live?.reliability));
  const last = drawEquity($("sig-equity"), b.equity);
  $("sig-key-strategy").textContent = last ? `Strategy ${signedPercent(last.strategy)}` : "Strategy";
  $("sig-key-hold").textContent = last ? `Buy-and-hold ${signedPercent(last.buyHold)}` : "Buy-and-hold";

  const span = trained.first != null && trained.last != null ? ` from ${day(trained.first)} to ${day(trained.last)}` : "";
  const other = trained.market && record.market && trained.market !== record.market
    ? ` Trained on ${trained.market}, not on ${record.market} itself.`
    : "";
  const simulated = source === "simulator" ? ` ${record.market}'s own history here is simulated.` : "";
  $("sig-trained").textContent =
    `Backtest: walk-forward on ${trained.market ?? "?"} ${trained.interval ?? ""} candles${span}, ` +
    `${count(b.points)} out-of-sample points, model v${b.model_version ?? "?"}, after fees.${other}${simulated}`;
}
