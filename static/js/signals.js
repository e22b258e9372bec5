// Signals tab: each market's current call (or "No edge found", with the numbers, where the model
// did not beat its baselines out of sample), its risk and position size, the patterns on its
// candle, and the model's track record, live and backtested. This entry loads the data, picks
// the market and follows the hub (signals:<MARKET>); each part is a module under signals/.
import { app } from "./app.js?v=533bbedc808c";
import { $, el, haptic, setPressed, telegram } from "./lib/dom.js?v=7b1b01db74f5";
import { closeWord } from "./signals/format.js?v=630e7193a70d";
import { renderCall, renderPatterns } from "./signals/call.js?v=f20ad4b2dfa7";
import { renderRecord } from "./signals/record.js?v=f605df8b6fe8";
import { renderRisk, renderRiskChoices } from "./signals/risk.js?v=349e1ecd6961";

const MARKET_KEY = "simplrefq.signals.market";
const RISK_KEY = "simplrefq.signals.risk";
// A new signal means the one before may have been scored: the record and the position size are
// fetched again once the burst of markets closing on the same hour has settled.
const REFRESH_DELAY_MS = 400;
// The share of the balance to lose at the 95% VaR, GET /api/signals/{market}?risk= (the server
// takes up to 20% and defaults to 1%, the common retail rule): half, the default and double.
const RISK_CHOICES = [0.005, 0.01, 0.02];

const panel = $("panel-signals");
const root = $("signals");
if (panel && root) mountSignals(panel, root);

function mountSignals(panel, root) {
  const signals = new Map(); // market → its newest signal, in the order the API lists them
  const subscriptions = new Map(); // topic → its unsubscribe
  let chosen = null;
  let started = false;
  let refreshTimer = 0;
  let reloadTimer = 0;
  let riskChoice = savedRisk();

  const path = (market) => `/api/signals/${encodeURIComponent(market)}`;
  const signedIn = () => document.body.dataset.auth === "ready";
  const settled = () => !["pending", undefined].includes(document.body.dataset.auth);
  const quoteOf = (market) => String(market).split("-")[1] ?? "";

  function showError(error, id = "sig-error", fallback = "Could not load the signals.") {
    $(id).textContent = error ? error.message || fallback : "";
  }

  // --- Markets -----------------------------------------------------------------------------------

  function renderMarkets() {
    $("sig-markets").replaceChildren(...[...signals.keys()].map((market) => {
      const button = el("button", "", market.split("-")[0]);
      button.type = "button";
      button.dataset.market = market;
      button.setAttribute("aria-label", market);
      return button;
    }));
    setPressed($("sig-markets"), "data-market", chosen);
  }

  function choose(market) {
    const next = signals.has(market) ? market : signals.keys().next().value;
    if (!next) return;
    const changed = next !== chosen;
    chosen = next;
    root.dataset.market = next;
    try { localStorage.setItem(MARKET_KEY, next); } catch { /* private mode: not kept */ }
    setPressed($("sig-markets"), "data-market", next);
    renderSignal();
    if (changed) {
      $("sig-record").hidden = true;
      showError(null, "sig-record-error");
      showError(null, "sig-risk-error");
    }
    return Promise.all([loadRisk(next), loadRecord(next)]);
  }

  function renderSignal() {
    const signal = signals.get(chosen);
    if (!signal) return;
    renderCall(signal);
    renderPatterns(signal);
    renderRisk(signal, null, { quote: quoteOf(chosen), signedIn: signedIn() });
  }

  // --- Loading -----------------------------------------------------------------------------------

  async function loadRisk(market) {
    if (!signedIn()) return;
    const query = riskChoice ? `?risk=${riskChoice}` : "";
    try {
      const data = await app.api(path(market) + query);
      if (market !== chosen || !data?.risk) return;
      if (data.signal) accept(data.signal);
      renderRisk(signals.get(market), data.risk, { quote: quoteOf(market) });
      renderRiskChoices(RISK_CHOICES, data.risk.risk_fraction);
      showError(null, "sig-risk-error");
    } catch (error) {
      if (market === chosen) showError(error, "sig-risk-error", "Could not load the position size.");
    }
  }

  async function loadRecord(market) {
    try {
      const record = await app.api(`${path(market)}/record`);
      if (market !== chosen) return;
      renderRecord(record, { source: signals.get(market)?.source });
      root.dataset.record = market;
    } catch (error) {
      if (market !== chosen) return;
      $("sig-record").hidden = true;
      showError(error, "sig-record-error", "Could not load the track record.");
    }
  }

  function empty(title, text, state = "empty") {
    $("sig-empty-title").textContent = title;
    $("sig-empty-text").textContent = text;
    $("sig-empty").hidden = false;
    $("sig-main").hidden = true;
    root.dataset.state = state;
  }

  /** The list of markets' signals; an empty list leaves the waiting state up. */
  async function loadList() {
    let list;
    try {
      list = await app.api("/api/signals");
    } catch (error) {
      if (error.status === 404 || error.status === 501 || error.status === 503) {
        showError(null);
        empty("Signals are not available yet", "Check back later.", "unavailable");
      } else {
        showError(error);
        root.dataset.state = "failed";
      }
      return false;
    }
    signals.clear();
    for (const signal of Array.isArray(list) ? list : []) accept(signal);
    showError(null);
    if (!signals.size) {
      await waiting();
      return true;
    }
    $("sig-empty").hidden = true;
    $("sig-main").hidden = false;
    renderMarkets();
    root.dataset.state = "ready";
    await choose(chosen ?? savedMarket());
    return true;
  }

  // No signal yet: the record of any market says whether a model is there to make one.
  const WAITING = {
    training: ["The model is training", "Signals appear here at the first candle close after it is done."],
    failed: ["The model could not be trained", "Signals are off until it is trained again."],
    untrained: ["No model yet", "Signals appear here once a model is trained."],
  };

  async function waiting() {
    let status = "ready";
    let interval = null;
    const [market] = await candidates();
    if (market) {
      try {
        const record = await app.api(`${path(market)}/record`);
        status = record?.status ?? status;
        interval = record?.backtest?.trained_on?.interval ?? null;
      } catch { /* say what is most likely: the model waits for a close */ }
    }
    if (signals.size) return; // the first signal came over the hub meanwhile
    const [title, text] = WAITING[status] ?? [
      `Waiting for the first ${closeWord(interval ?? "1h")} close`,
      "The model scores every market when its candle closes: the first calls appear here then.",
    ];
    empty(title, text);
  }

  /** A signal from the API or the hub; an older one than the market's newest is ignored. */
  function accept(signal) {
    if (!signal?.market) return false;
    const known = signals.get(signal.market);
    if (known && Number(known.time) > Number(signal.time)) return false;
    signals.set(signal.market, signal);
    return true;
  }

  // --- Live updates ------------------------------------------------------------------------------

  // An event topic that started over may have lost signals: the list is fetched again, once for
  // every topic the same reconnection resynced.
  function reloadSoon() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(loadList, 0);
  }

  function follow(markets) {
    for (const market of markets) {
      const topic = `signals:${market}`;
      if (subscriptions.has(topic) || !app.hub) continue;
      subscriptions.set(topic, app.hub.subscribe(topic, { frame: onFrame, resynced: reloadSoon }));
    }
  }

  function onFrame(frame) {
    const data = frame.data?.signal ?? frame.data;
    if (!data?.market) return;
    const first = !signals.size;
    const isNew = !signals.has(data.market);
    if (!accept(data)) return;
    if (first) {
      $("sig-empty").hidden = true;
      $("sig-main").hidden = false;
      root.dataset.state = "ready";
    }
    if (isNew) renderMarkets();
    if (first) return void choose(savedMarket());
    if (data.market !== chosen) return;
    renderSignal();
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => Promise.all([loadRisk(chosen), loadRecord(chosen)]), REFRESH_DELAY_MS);
  }

  /** The markets that may publish: those with a signal, and the exchange's own (for the first). */
  let listed = null;
  async function candidates() {
    try {
      listed ??= ((await app.api("/api/markets")) ?? []).map((m) => m?.symbol).filter(Boolean);
    } catch { /* the signals' markets are enough */ }
    return [...new Set([...signals.keys(), ...(listed ?? [])])];
  }

  // --- Events ------------------------------------------------------------------------------------

  $("sig-markets").addEventListener("click", (event) => {
    const button = event.target.closest("[data-market]");
    if (!button || button.dataset.market === chosen) return;
    haptic("select");
    choose(button.dataset.market);
  });

  $("sig-risk-choice").addEventListener("click", (event) => {
    const button = event.target.closest("[data-risk]");
    if (!button || !chosen) return;
    haptic("select");
    riskChoice = Number(button.dataset.risk);
    try { localStorage.setItem(RISK_KEY, String(riskChoice)); } catch { /* not kept */ }
    setPressed($("sig-risk-choice"), "data-risk", String(riskChoice));
    loadRisk(chosen);
  });

  // Back from the background (the hub's socket reconnects by itself): a tab that failed tries again.
  telegram()?.onEvent?.("activated", () => {
    if (started && !["ready", "loading"].includes(root.dataset.state)) loadList();
  });

  // --- Start: once sign-in has settled and the panel is first shown ------------------------------

  function savedMarket() {
    try { return localStorage.getItem(MARKET_KEY); } catch { return null; }
  }

  function savedRisk() {
    try {
      const value = Number(localStorage.getItem(RISK_KEY));
      return RISK_CHOICES.includes(value) ? value : null;
    } catch { return null; }
  }

  async function start() {
    if (started || panel.hidden || !settled()) return;
    started = true;
    root.dataset.state = "loading";
    const loaded = await loadList();
    if (!loaded && root.dataset.state === "failed") {
      started = false; // tried again the next time the panel shows
      return;
    }
    follow(await candidates());
  }

  // Signing in after the tab opened (or a new session): the position size needs the user.
  document.body.addEventListener("simplrefq:signed-in", () => {
    if (started && chosen) loadRisk(chosen);
    start();
  });
  new MutationObserver(start).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  new MutationObserver(start).observe(document.body, { attributes: true, attributeFilter: ["data-auth"] });
  start();
}
