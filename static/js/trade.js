// Trade tab: market switcher, candle chart, order book ladder, order form, open orders, the
// market's trades and the user's own fills, kept live by the hub (/ws JSON protocol). This entry
// loads the data and wires the parts together; each part is a module under static/js/trade/.
// Prices and amounts stay decimal strings on the wire; the form does its sums on BigInt units
// (lib/decimal.js) so the tick and lot grids are checked exactly.
import { app } from "./app.js?v=533bbedc808c";
import { $, el, haptic, setPressed, telegram } from "./lib/dom.js?v=7b1b01db74f5";
import { loadBook, onBookFrame, renderBook, resetBook, wireBook } from "./trade/book.js?v=63e3c3aa0c73";
import { bar, CANDLES, ensureChart, resetChart, setBars, updateBar, watchTheme } from "./trade/chart.js?v=84c1aa49ee48";
import { clearErrors, setType, wireForm } from "./trade/form.js?v=b0868399e9ba";
import { cancelOrder, loadMine, loadOpen, onFill, upsertOrder } from "./trade/orders.js?v=c1362b7344fd";
import { form, specOf, state } from "./trade/state.js?v=b93ca559ce41";
import { loadBalances, setBalance, updateSummary } from "./trade/summary.js?v=c1e7766501d1";
import { addTrades, TAPE_SIZE } from "./trade/tape.js?v=ee008663ad6e";

const MARKET_KEY = "simplrefq.trade.market";

const panel = $("panel-trade");
const root = $("trade");
if (panel && root) mountTrade(panel, root);

function mountTrade(panel, root) {
  let started = false;

  // --- Loading -----------------------------------------------------------------------------------

  const path = (symbol) => `/api/markets/${encodeURIComponent(symbol)}`;

  async function loadTape(symbol) {
    const trades = await app.api(`${path(symbol)}/trades?limit=${TAPE_SIZE}`);
    if (state.spec?.symbol === symbol && Array.isArray(trades)) addTrades(trades, true);
  }

  async function loadCandles(symbol) {
    const candles = await app.api(`${path(symbol)}/candles?tf=1m&limit=${CANDLES}`);
    if (state.spec?.symbol === symbol && Array.isArray(candles)) setBars(candles);
  }

  function showError(error) {
    $("trd-error").textContent = error ? error.message || "Could not load the trading data." : "";
  }

  async function settle(loads) {
    const failed = (await Promise.allSettled(loads)).find((r) => r.status === "rejected");
    showError(failed?.reason);
  }

  const loadMarket = (symbol) => settle([loadBook(symbol), loadTape(symbol), loadCandles(symbol)]);
  const loadAccount = () => settle([loadBalances(), loadOpen(), loadMine()]);

  // --- Markets -----------------------------------------------------------------------------------

  function renderMarkets() {
    $("trd-markets").replaceChildren(...state.markets.map((m) => {
      const button = el("button", "", m.base);
      button.type = "button";
      button.dataset.market = m.symbol;
      button.setAttribute("aria-label", m.symbol);
      button.setAttribute("aria-pressed", String(m.symbol === state.spec?.symbol));
      return button;
    }));
  }

  function chooseMarket(symbol) {
    const next = state.markets.find((m) => m.symbol === symbol) ?? state.markets[0];
    if (!next || next.symbol === state.spec?.symbol) return null;
    const old = state.spec ? marketTopics(state.spec.symbol) : [];
    const spec = next;
    state.spec = spec;
    try { localStorage.setItem(MARKET_KEY, spec.symbol); } catch { /* private mode: not kept */ }
    resetBook();
    state.tape = [];
    resetChart();
    $("trd-last").className = "trd-last";
    $("trd-last").textContent = spec.last_price ?? "–";
    state.lastPrice = spec.last_price ?? null;
    $("trd-symbol").textContent = spec.symbol;
    for (const node of root.querySelectorAll(".trd-base-unit")) node.textContent = `(${spec.base})`;
    for (const node of root.querySelectorAll(".trd-quote-unit")) node.textContent = `(${spec.quote})`;
    $("trd-price").value = "";
    $("trd-qty").value = "";
    clearErrors();
    form.cid = null;
    setPressed($("trd-markets"), "data-market", spec.symbol);
    addTrades([], true);
    renderBook();
    updateSummary();
    resubscribe(old);
    return loadMarket(spec.symbol);
  }

  // --- Live updates ------------------------------------------------------------------------------

  const marketTopics = (symbol) => [`book:${symbol}`, `trades:${symbol}`, `candles:${symbol}:1m`];
  // topic → its unsubscribe. The page's one socket (static/js/hub.js) hands frames over in seq
  // order, resuming after a drop; a topic it had to start over is resynced.
  const subscriptions = new Map();

  function resubscribe(old) {
    for (const topic of old) {
      subscriptions.get(topic)?.();
      subscriptions.delete(topic);
    }
    for (const topic of [`user:${app.user().id}`, ...marketTopics(state.spec.symbol)]) {
      if (subscriptions.has(topic) || !app.hub) continue;
      subscriptions.set(topic, app.hub.subscribe(topic, { frame: onFrame, resynced: () => recover(topic) }));
    }
  }

  /** Frames went missing: state topics start again from the snapshot that follows, event topics are refetched. */
  function recover(topic) {
    if (topic.startsWith("trades:")) loadTape(state.spec.symbol).catch(showError);
    else if (topic.startsWith("user:")) loadAccount();
  }

  function onFrame(frame) {
    const { topic, type, data } = frame;
    if (!subscriptions.has(topic) || data == null) return;

    if (topic.startsWith("book:")) {
      onBookFrame(type, data);
    } else if (topic.startsWith("trades:")) {
      addTrades(data.trades ?? [data]);
    } else if (topic.startsWith("candles:")) {
      updateBar(bar(data.closed ?? data.candle ?? data));
    } else if (data.type === "trading") {
      // One message per batch: the orders that changed, then the fills.
      for (const order of data.orders ?? []) upsertOrder(order);
      for (const fill of data.fills ?? []) onFill(fill);
    } else if (data.type === "balance") {
      setBalance(data);
    }
  }

  // --- Events ------------------------------------------------------------------------------------

  watchTheme();
  wireBook();
  wireForm();

  $("trd-markets").addEventListener("click", (event) => {
    const button = event.target.closest("[data-market]");
    if (!button || button.dataset.market === state.spec?.symbol) return;
    haptic("select");
    chooseMarket(button.dataset.market);
  });

  $("trd-open").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-order]");
    if (button) cancelOrder(button);
  });

  $("trd-mine-more").addEventListener("click", () => loadMine(true).catch(showError));

  // Back from the background (the hub's socket reconnects by itself): a tab that failed to load tries again.
  telegram()?.onEvent?.("activated", () => {
    if (root.dataset.state !== "ready") start();
  });

  // --- Start: once signed in and the panel is first shown ----------------------------------------

  function savedMarket() {
    try { return localStorage.getItem(MARKET_KEY); } catch { return null; }
  }

  async function start() {
    if (started || panel.hidden || document.body.dataset.auth !== "ready") return;
    started = true;
    root.dataset.state = "loading";
    let list;
    try {
      list = await app.api("/api/markets");
    } catch (error) {
      started = false; // tried again the next time the panel shows
      const missing = error.status === 404 || error.status === 501 || error.status === 503;
      $("trd-unavailable").hidden = !missing;
      showError(missing ? null : error);
      root.dataset.state = missing ? "unavailable" : "failed";
      return;
    }
    if (!Array.isArray(list) || !list.length) {
      started = false;
      $("trd-unavailable").hidden = false;
      root.dataset.state = "unavailable";
      return;
    }
    state.markets = list.filter((m) => m?.symbol).map(specOf);
    $("trd-unavailable").hidden = true;
    $("trd-main").hidden = false;
    showError(null);
    renderMarkets();
    ensureChart();
    setType(form.type);
    const market = chooseMarket(savedMarket());
    await Promise.all([market, loadAccount()]);
    root.dataset.state = "ready";
  }

  document.body.addEventListener("simplrefq:signed-in", start);
  new MutationObserver(start).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  start();
}
