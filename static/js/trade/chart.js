// The candle chart: lightweight-charts, fetched when the Trade panel first shows (it outweighs
// the rest of the page), themed from the page's CSS and kept live by the candles topic.
import { $ } from "../lib/dom.js?v=7b1b01db74f5";
import { ms, when } from "../lib/time.js?v=ac20f7f0ed91";
import { state } from "./state.js?v=b93ca559ce41";
import { showLast } from "./tape.js?v=ee008663ad6e";

export const CANDLES = 300; // five hours of 1-minute candles: enough to scroll back on a phone

const chart = { api: null, series: null, bars: [], failed: false, loading: null };

function loadLibrary(url) {
  if (window.LightweightCharts) return Promise.resolve(window.LightweightCharts);
  chart.loading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.addEventListener("load", () => (window.LightweightCharts ? resolve(window.LightweightCharts) : reject(new Error("no chart"))));
    script.addEventListener("error", () => reject(new Error("the chart library did not load")));
    document.head.append(script);
  });
  return chart.loading;
}

function chartTheme() {
  const css = getComputedStyle($("trade"));
  const read = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const up = read("--trd-up", "#16804a");
  const down = read("--trd-down", "#d1343a");
  const grid = read("--trd-grid", "rgba(128,128,128,0.14)");
  return {
    layout: { textColor: getComputedStyle($("trd-symbol")).color },
    grid: { vertLines: { color: grid }, horzLines: { color: grid } },
    series: { upColor: up, downColor: down, wickUpColor: up, wickDownColor: down, borderVisible: false },
  };
}

function applyChartTheme() {
  if (!chart.api) return;
  const theme = chartTheme();
  chart.api.applyOptions({ layout: theme.layout, grid: theme.grid });
  chart.series.applyOptions(theme.series);
}

function applyChartMarket() {
  const { spec } = state;
  if (!chart.series || !spec) return;
  chart.series.applyOptions({ priceFormat: { type: "price", precision: spec.pd, minMove: Number(spec.tick_size) || 10 ** -spec.pd } });
}

/** Creates the chart once (fetching the library); a failure leaves data-state="failed". */
export async function ensureChart() {
  if (chart.api || chart.failed) return;
  const box = $("trd-chart");
  try {
    const lib = await loadLibrary(box.dataset.chartLib);
    if (chart.api) return;
    const theme = chartTheme();
    const time = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    chart.api = lib.createChart(box, {
      autoSize: true,
      // The logo would add a <style> element, which the policy refuses; the template credits TradingView.
      layout: { ...theme.layout, background: { type: lib.ColorType.Solid, color: "transparent" }, fontSize: 11, attributionLogo: false },
      grid: theme.grid,
      rightPriceScale: { borderVisible: false },
      timeScale: {
        borderVisible: false, timeVisible: true, secondsVisible: false,
        tickMarkFormatter: (t, type) => (type < 3 ? new Date(t * 1000).toLocaleDateString([], { day: "numeric", month: "short" }) : time(t)),
      },
      localization: { timeFormatter: (t) => when(t * 1000) },
      // A vertical swipe scrolls the page, not the chart.
      handleScroll: { vertTouchDrag: false },
    });
    chart.series = chart.api.addSeries(lib.CandlestickSeries, theme.series);
    applyChartMarket();
    chart.series.setData(chart.bars);
  } catch {
    chart.failed = true;
    box.dataset.state = "failed";
  }
}

function markChart() {
  if (!chart.failed) $("trd-chart").dataset.state = chart.bars.length ? "ready" : "empty";
}

/** A candle from the API or the hub as a chart bar (time in seconds), or null if malformed. */
export function bar(candle) {
  const time = Math.floor(ms(candle?.open_time) / 1000);
  const values = ["open", "high", "low", "close"].map((key) => Number(candle?.[key]));
  if (!Number.isFinite(time) || values.some((v) => !Number.isFinite(v))) return null;
  const [open, high, low, close] = values;
  return { time, open, high, low, close };
}

/** The history as the API answered it. */
export function setBars(candles) {
  const bars = candles.map(bar).filter(Boolean).sort((a, b) => a.time - b.time);
  // Keep a live candle newer than the history (it came over the hub while this loaded).
  const live = chart.bars.at(-1);
  chart.bars = bars.filter((b, i) => i === 0 || b.time > bars[i - 1].time);
  chart.series?.setData(chart.bars);
  if (live) updateBar(live);
  markChart();
}

/** A live candle: the current one changes, or the next one starts. */
export function updateBar(next) {
  if (!next) return;
  const last = chart.bars.at(-1);
  if (last && next.time < last.time) return; // the chart takes no edits to the past
  if (last && next.time === last.time) chart.bars[chart.bars.length - 1] = next;
  else chart.bars.push(next);
  if (chart.bars.length > CANDLES * 2) chart.bars.splice(0, chart.bars.length - CANDLES);
  chart.series?.update(next);
  markChart();
  if (!state.tape.length && state.spec) showLast(next.close.toFixed(state.spec.pd)); // no trades yet: the reference price
}

/** Another market: no bars until its history loads, and its price format. */
export function resetChart() {
  chart.bars = [];
  chart.series?.setData([]);
  markChart();
  applyChartMarket();
}

/** Follows the page's theme (Telegram's colours, or the system's dark mode). */
export function watchTheme() {
  const themeWatch = () => requestAnimationFrame(applyChartTheme);
  new MutationObserver(themeWatch).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme", "style"] });
  matchMedia("(prefers-color-scheme: dark)").addEventListener?.("change", themeWatch);
}
