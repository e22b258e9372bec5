// Trade tab: market switcher, candle chart, order book ladder, order form, open orders, the
// market's trades and the user's own fills, kept live by the hub (/ws JSON protocol).
// Prices and amounts stay decimal strings on the wire; the form does its sums on BigInt units
// so the tick and lot grids are checked exactly (floats would put 0.3 off a 0.1 grid).
(() => {
  "use strict";

  const app = window.SimplRefQ;
  const panel = document.getElementById("panel-trade");
  const root = document.getElementById("trade");
  if (!app || !panel || !root) return;
  const tg = window.Telegram?.WebApp ?? null;
  const $ = (id) => document.getElementById(id);

  const LEVELS = 8; // per side: asks, spread and bids stay within one phone screen
  const TAPE_SIZE = 30;
  const MINE_PAGE = 20;
  const CANDLES = 300; // five hours of 1-minute candles: enough to scroll back on a phone
  const BOOK_DEPTH = 20;
  // Several fills of one order land within milliseconds: one buzz for the burst.
  const BUZZ_GAP_MS = 800;
  const MARKET_KEY = "simplrefq.trade.market";
  // Every decimal is held as BigInt units of 10**-18: more places than any asset has.
  const SCALE = 18;
  const ONE = 10n ** BigInt(SCALE);
  const BPS = 10_000n;

  // --- Decimals ---------------------------------------------------------------------------------

  /** "5.2" → BigInt units; null for anything but a plain non-negative decimal (a comma is a point). */
  function dec(text) {
    const match = /^(\d*)(?:[.,](\d*))?$/.exec(String(text ?? "").trim());
    if (!match || !(match[1] || match[2])) return null;
    const fraction = (match[2] ?? "").replace(/0+$/, "");
    if (fraction.length > SCALE) return null;
    return BigInt(match[1] || "0") * ONE + BigInt(fraction.padEnd(SCALE, "0"));
  }

  /** Units → a fixed-point string with ``places`` decimals (truncated toward zero). */
  function fmt(units, places) {
    const negative = units < 0n;
    const digits = ((negative ? -units : units) / 10n ** BigInt(SCALE - places)).toString().padStart(places + 1, "0");
    const text = places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
    return negative && /[1-9]/.test(text) ? `-${text}` : text;
  }

  /** Like fmt, without trailing zeros beyond ``keep`` decimals: "52.000000" → "52.00". */
  function trim(units, places, keep = 2) {
    const text = fmt(units, places);
    const point = text.indexOf(".");
    if (point < 0) return text;
    let end = text.length;
    while (end > point + 1 + keep && text[end - 1] === "0") end--;
    return text.slice(0, end === point + 1 ? point : end);
  }

  const places = (text) => (String(text).split(".")[1] ?? "").length;
  const cost = (price, qty) => (price * qty) / ONE;
  const feeOf = (value, bps) => (value * bps) / BPS;
  const max = (a, b) => (a > b ? a : b);

  function specOf(m) {
    const pd = Number.isInteger(m.price_decimals) ? m.price_decimals : places(m.tick_size);
    const qd = Number.isInteger(m.qty_decimals) ? m.qty_decimals : places(m.lot_size);
    const [base, quote] = m.symbol.split("-");
    return {
      ...m, pd, qd,
      base: m.base || base, quote: m.quote || quote,
      tick: dec(m.tick_size) || 0n, lot: dec(m.lot_size) || 0n,
      minNotional: dec(m.min_notional) ?? 0n,
      makerBps: BigInt(m.maker_fee_bps ?? 0), takerBps: BigInt(m.taker_fee_bps ?? 0),
    };
  }

  // --- Small helpers ------------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  /** Epoch ms from ms, seconds or an ISO string. */
  function ms(value) {
    if (typeof value === "number") return value < 1e11 ? value * 1000 : value;
    const number = Number(value);
    return Number.isFinite(number) && value !== "" ? ms(number) : Date.parse(value);
  }

  const clock = (at) => new Date(ms(at)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  function when(at) {
    const date = new Date(ms(at));
    if (Number.isNaN(date.getTime())) return "";
    if (date.toDateString() === new Date().toDateString()) return clock(at);
    return date.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  }

  function haptic(kind) {
    if (!tg?.isVersionAtLeast?.("6.1")) return;
    if (kind === "select") tg.HapticFeedback?.selectionChanged?.();
    else tg.HapticFeedback?.notificationOccurred?.(kind);
  }

  let lastBuzz = 0;
  function buzzFill() {
    if (Date.now() - lastBuzz < BUZZ_GAP_MS) return;
    lastBuzz = Date.now();
    haptic("success");
  }

  function newOrderId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function setPressed(group, attribute, value) {
    for (const button of group.querySelectorAll(`[${attribute}]`)) {
      button.setAttribute("aria-pressed", String(button.getAttribute(attribute) === value));
    }
  }

  // --- State ----------------------------------------------------------------------------------------

  let started = false;
  let markets = [];
  let spec = null; // the chosen market
  const book = { bids: new Map(), asks: new Map(), fromHub: false, loading: false, early: [] };
  let tape = []; // the market's trades, newest first
  let lastPrice = null;
  const open = new Map(); // order id → order view
  const closed = new Set(); // ids seen filled or cancelled: a late "open" view must not revive them
  let mine = [];
  const mineKeys = new Set();
  let mineNext = null;
  const balances = new Map(); // asset → available units
  const form = { side: "buy", type: "limit", busy: false, cid: null };

  const sorted = (side) => [...book[side]]
    .map(([price, qty]) => ({ price, qty, units: dec(price) ?? 0n, amount: dec(qty) ?? 0n }))
    .sort((a, b) => (side === "asks" ? (a.units < b.units ? -1 : 1) : (a.units > b.units ? -1 : 1)));
  const best = (side) => sorted(side)[0]?.units ?? null;

  // --- Chart (lightweight-charts, fetched when the panel first shows) --------------------------------

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
    const css = getComputedStyle(root);
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
    if (!chart.series || !spec) return;
    chart.series.applyOptions({ priceFormat: { type: "price", precision: spec.pd, minMove: Number(spec.tick_size) || 10 ** -spec.pd } });
  }

  async function ensureChart() {
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

  function bar(candle) {
    const time = Math.floor(ms(candle?.open_time) / 1000);
    const values = ["open", "high", "low", "close"].map((key) => Number(candle?.[key]));
    if (!Number.isFinite(time) || values.some((v) => !Number.isFinite(v))) return null;
    const [open, high, low, close] = values;
    return { time, open, high, low, close };
  }

  function setBars(candles) {
    const bars = candles.map(bar).filter(Boolean).sort((a, b) => a.time - b.time);
    // Keep a live candle newer than the history (it came over the hub while this loaded).
    const live = chart.bars.at(-1);
    chart.bars = bars.filter((b, i) => i === 0 || b.time > bars[i - 1].time);
    chart.series?.setData(chart.bars);
    if (live) updateBar(live);
    markChart();
  }

  function updateBar(next) {
    if (!next) return;
    const last = chart.bars.at(-1);
    if (last && next.time < last.time) return; // the chart takes no edits to the past
    if (last && next.time === last.time) chart.bars[chart.bars.length - 1] = next;
    else chart.bars.push(next);
    if (chart.bars.length > CANDLES * 2) chart.bars.splice(0, chart.bars.length - CANDLES);
    chart.series?.update(next);
    markChart();
    if (!tape.length && spec) showLast(next.close.toFixed(spec.pd)); // no trades yet: the reference price
  }

  const themeWatch = () => requestAnimationFrame(applyChartTheme);
  new MutationObserver(themeWatch).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme", "style"] });
  matchMedia("(prefers-color-scheme: dark)").addEventListener?.("change", themeWatch);

  // --- Order book -------------------------------------------------------------------------------

  let bookFrame = 0;
  const renderBookSoon = () => { bookFrame ||= requestAnimationFrame(renderBook); };

  function setLevels(side, levels, replace) {
    if (replace) book[side].clear();
    for (const level of Array.isArray(levels) ? levels : []) {
      const [price, qty] = level;
      if (dec(qty) > 0n) book[side].set(price, qty);
      else book[side].delete(price);
    }
  }

  function applyBook(data, replace) {
    setLevels("bids", data?.bids, replace);
    setLevels("asks", data?.asks, replace);
    renderBookSoon();
    updateSummary();
  }

  function ladder(side, levels, total) {
    let cumulative = 0n;
    const rows = levels.map((level) => {
      cumulative += level.amount;
      const button = el("button", "trd-level");
      button.type = "button";
      button.dataset.price = level.price;
      button.setAttribute("aria-label", `${side === "asks" ? "Sell" : "Buy"} order: ${level.qty} ${spec.base} at ${level.price}; use this price`);
      button.append(el("span", "", level.price), el("span", "", level.qty), el("span", "", trim(cumulative, spec.qd, spec.qd)));
      // A custom property set through the CSSOM: allowed where style attributes are not.
      button.style.setProperty("--depth", total > 0n ? (Number((cumulative * 1000n) / total) / 1000).toFixed(3) : "0");
      const item = el("li");
      item.append(button);
      return item;
    });
    return side === "asks" ? rows.reverse() : rows;
  }

  function renderBook() {
    bookFrame = 0;
    if (!spec) return;
    const asks = sorted("asks").slice(0, LEVELS);
    const bids = sorted("bids").slice(0, LEVELS);
    const sum = (levels) => levels.reduce((total, level) => total + level.amount, 0n);
    const total = max(sum(asks), sum(bids));
    $("trd-asks").replaceChildren(...ladder("asks", asks, total));
    $("trd-bids").replaceChildren(...ladder("bids", bids, total));
    $("trd-book-empty").hidden = Boolean(asks.length || bids.length);
    const spread = $("trd-spread");
    if (asks.length && bids.length) {
      const gap = asks[0].units - bids[0].units;
      const mid = Number(asks[0].units + bids[0].units) / 2;
      const percent = mid > 0 ? ((Number(gap) / mid) * 100).toFixed(2) : "0";
      spread.replaceChildren(el("span", "", "Spread"), el("span", "", `${fmt(gap, spec.pd)} · ${percent}%`));
    } else {
      spread.replaceChildren(el("span", "", "Spread"), el("span", "", "–"));
    }
  }

  // --- Market trades and the last price -----------------------------------------------------------

  function showLast(price) {
    const node = $("trd-last");
    const now = dec(price);
    const before = dec(lastPrice);
    if (now == null) return;
    if (before != null && now !== before) node.className = `trd-last ${now > before ? "is-up" : "is-down"}`;
    lastPrice = price;
    node.textContent = price;
  }

  function addTrades(trades, replace = false) {
    if (replace) tape = [];
    const seen = new Set(tape.map((t) => String(t.id)));
    const fresh = trades.filter((t) => t && t.price && !seen.has(String(t.id)));
    tape = [...fresh, ...tape].sort((a, b) => ms(b.at) - ms(a.at)).slice(0, TAPE_SIZE);
    if (tape.length) showLast(tape[0].price);
    $("trd-trades").replaceChildren(...tape.map((t) => {
      const row = el("li", "trd-row");
      row.append(el("span", t.side === "sell" ? "is-sell" : "is-buy", t.price), el("span", "", t.qty), el("span", "", clock(t.at)));
      return row;
    }));
    $("trd-trades-empty").hidden = tape.length > 0;
  }

  // --- Open orders and the user's fills -------------------------------------------------------------

  function upsertOrder(order) {
    if (!order || order.id == null) return;
    const id = String(order.id);
    const known = open.get(id);
    if (order.status === "open" && !closed.has(id)) {
      if (known && ms(known.updated_at) > ms(order.updated_at)) return; // an older view, late
      open.set(id, order);
    } else if (order.status && order.status !== "open") {
      closed.add(id);
      open.delete(id);
    }
    renderOpen();
  }

  function renderOpen() {
    const orders = [...open.values()].sort((a, b) => ms(b.created_at) - ms(a.created_at));
    $("trd-open").replaceChildren(...orders.map((order) => {
      const row = el("li", "trd-row");
      const base = order.market?.split("-")[0] ?? "";
      const what = order.type === "market" ? `${order.qty} ${base} at market` : `${order.qty} ${base} @ ${order.price}`;
      const cancel = el("button", "trd-cancel", "Cancel");
      cancel.type = "button";
      cancel.dataset.order = String(order.id);
      cancel.setAttribute("aria-label", `Cancel ${order.side} ${what}`);
      const filled = dec(order.filled) > 0n ? ` · filled ${order.filled} of ${order.qty}` : "";
      row.append(
        el("span", `trd-tag ${order.side === "sell" ? "is-sell" : "is-buy"}`, order.side),
        el("span", "trd-grow", what), cancel,
        el("span", "trd-sub", `${order.market} · ${order.type}${order.tif && order.tif !== "GTC" ? ` ${order.tif}` : ""}${filled} · ${when(order.created_at)}`),
      );
      return row;
    }));
    $("trd-open-empty").hidden = orders.length > 0;
  }

  function fillRow(fill) {
    const row = el("li", "trd-row");
    const [base, quote] = String(fill.market ?? "").split("-");
    row.append(
      el("span", `trd-tag ${fill.side === "sell" ? "is-sell" : "is-buy"}`, fill.side),
      el("span", "trd-grow", `${fill.qty} ${base ?? ""} @ ${fill.price}`),
      el("span", "hint", fill.liquidity ?? ""),
      el("span", "trd-sub", `${fill.market} · fee ${fill.fee} ${quote ?? ""} · ${when(fill.at)}`),
    );
    return row;
  }

  function addMine(fills, { append = false } = {}) {
    const fresh = fills.filter((f) => {
      const key = `${f.trade_id}:${f.order_id}`;
      if (mineKeys.has(key)) return false;
      mineKeys.add(key);
      return true;
    });
    mine = append ? [...mine, ...fresh] : [...fresh, ...mine];
    $("trd-mine").replaceChildren(...mine.map(fillRow));
    $("trd-mine-empty").hidden = mine.length > 0;
  }

  function onFill(fill) {
    addMine([fill]);
    buzzFill();
    const verb = fill.side === "sell" ? "Sold" : "Bought";
    $("trd-form-note").textContent = `${verb} ${fill.qty} ${String(fill.market).split("-")[0]} at ${fill.price}`;
  }

  // --- Balances and the order form --------------------------------------------------------------------

  function setBalance(view) {
    if (!view?.asset) return;
    balances.set(view.asset, dec(view.available) ?? 0n);
    updateSummary();
  }

  const spending = () => (form.side === "buy" ? spec.quote : spec.base);

  /** What a market order for ``qty`` would cost or fetch, walking the book: [qty covered, value]. */
  function walk(qty) {
    let left = qty;
    let value = 0n;
    for (const level of sorted(form.side === "buy" ? "asks" : "bids")) {
      const take = left < level.amount ? left : level.amount;
      value += cost(level.units, take);
      left -= take;
      if (left === 0n) break;
    }
    return [qty - left, value];
  }

  /** The order's value and fee rate as far as the inputs and the book tell. */
  function estimate(price, qty) {
    if (qty == null || qty === 0n) return null;
    if (form.type === "market") {
      const [covered, value] = walk(qty);
      return { value, bps: spec.takerBps, partial: covered < qty };
    }
    if (price == null || price === 0n) return null;
    const ask = best("asks");
    const bid = best("bids");
    const takes = form.side === "buy" ? ask != null && price >= ask : bid != null && price <= bid;
    return { value: cost(price, qty), bps: takes ? spec.takerBps : spec.makerBps, partial: false };
  }

  function updateSummary() {
    if (!spec) return;
    const asset = spending();
    const available = balances.get(asset);
    $("trd-available").textContent = available == null ? "–" : `${trim(available, 9, 2)} ${asset}`;
    const guess = estimate(dec($("trd-price").value), dec($("trd-qty").value));
    const approx = form.type === "market" ? "≈ " : "";
    $("trd-total").textContent = guess ? `${approx}${trim(guess.value, spec.pd + spec.qd)} ${spec.quote}${guess.partial ? " (book too thin)" : ""}` : "–";
    $("trd-fee").textContent = guess
      ? `${approx}${trim(feeOf(guess.value, guess.bps), spec.pd + spec.qd)} ${spec.quote} (${Number(guess.bps) / 100}%)`
      : "–";
    const button = $("trd-submit");
    button.disabled = form.busy;
    if (!form.busy) button.textContent = `${form.side === "buy" ? "Buy" : "Sell"} ${spec.base}`;
  }

  function fieldError(name, message) {
    $(`trd-${name}-error`).textContent = message || "";
    $(`trd-${name}`).setAttribute("aria-invalid", String(Boolean(message)));
  }

  function clearErrors() {
    fieldError("price", "");
    fieldError("qty", "");
    $("trd-form-error").textContent = "";
  }

  /** The order to send, or null after showing why not. */
  function checkedOrder() {
    clearErrors();
    const order = { market: spec.symbol, side: form.side, type: form.type };
    const priceText = $("trd-price").value.trim();
    const qtyText = $("trd-qty").value.trim();
    const price = dec(priceText);
    const qty = dec(qtyText);
    let ok = true;
    if (form.type === "limit") {
      const problem = !priceText ? "Enter a price."
        : !price ? "Enter a price above 0."
        : spec.tick && price % spec.tick ? `The price must be a multiple of ${spec.tick_size}.` : "";
      if (problem) { fieldError("price", problem); ok = false; }
      else order.price = fmt(price, spec.pd);
    }
    const qtyProblem = !qtyText ? "Enter an amount."
      : !qty ? "Enter an amount above 0."
      : spec.lot && qty % spec.lot ? `The amount must be a multiple of ${spec.lot_size} ${spec.base}.` : "";
    if (qtyProblem) { fieldError("qty", qtyProblem); ok = false; }
    else order.qty = fmt(qty, spec.qd);
    if (!ok) return null;

    const guess = estimate(price, qty);
    if (form.type === "limit" && guess.value < spec.minNotional) {
      $("trd-form-error").textContent =
        `The smallest order is worth ${spec.min_notional} ${spec.quote}; this one is ${trim(guess.value, spec.pd + spec.qd)}.`;
      return null;
    }
    const available = balances.get(spending());
    if (available != null) {
      // A buy may pay the taker fee on top (it takes whenever it crosses); a sell spends base only.
      const need = form.side === "buy" ? guess.value + feeOf(guess.value, max(spec.takerBps, spec.makerBps)) : qty;
      if (need > available) {
        const places = form.side === "buy" ? spec.pd + spec.qd : spec.qd;
        $("trd-form-error").textContent =
          `Not enough ${spending()}: ${trim(available, 9, 2)} available, ${trim(need, places)} needed.`;
        return null;
      }
    }
    return order;
  }

  const SERVER_FIELDS = { invalid_price: "price", invalid_quantity: "qty" };

  async function submit(event) {
    event.preventDefault();
    if (form.busy || !spec) return;
    const order = checkedOrder();
    if (!order) {
      haptic("error");
      return;
    }
    // One id per order the user means: a double tap or a retry after a lost answer is the same
    // order to the server, which then answers with the one it already has.
    form.cid ??= newOrderId();
    form.busy = true;
    $("trd-submit").textContent = "Placing…";
    $("trd-form-note").textContent = "";
    updateSummary();
    try {
      const placed = await app.api("/api/orders", { method: "POST", body: { ...order, client_order_id: form.cid } });
      form.cid = null;
      upsertOrder(placed);
      $("trd-qty").value = "";
      $("trd-form-note").textContent = placedNote(placed);
      if (dec(placed?.filled) > 0n) buzzFill();
      loadBalances().catch(() => {});
    } catch (error) {
      // Refused (4xx): the next tap is a new order. No answer or a busy server (5xx): the order
      // may still go in, so a retry keeps the id and cannot place it twice.
      if (error.status >= 400 && error.status < 500) form.cid = null;
      const code = error.data?.error;
      const message = !error.status ? "Could not reach the server: try again."
        : error.status === 404 ? "Trading is not available yet."
        : error.message || "Could not place the order.";
      if (SERVER_FIELDS[code]) fieldError(SERVER_FIELDS[code], message);
      else $("trd-form-error").textContent = message;
      haptic("error");
    } finally {
      form.busy = false;
      updateSummary();
    }
  }

  function placedNote(order) {
    if (!order) return "Order placed.";
    const base = order.market?.split("-")[0] ?? "";
    const filled = dec(order.filled) ?? 0n;
    const at = order.avg_price ? ` at ${order.avg_price}` : "";
    if (order.status === "filled") return `Filled: ${order.side === "sell" ? "sold" : "bought"} ${order.filled} ${base}${at}.`;
    if (order.status === "open") return filled > 0n ? `Placed; ${order.filled} of ${order.qty} ${base} filled so far.` : "Order placed.";
    return filled > 0n ? `Filled ${order.filled} of ${order.qty} ${base}${at}; the rest ${order.status}.` : `Order ${order.status}.`;
  }

  function fillShare(percent) {
    const available = balances.get(spending());
    if (!spec || available == null) return;
    let qty = 0n;
    let budget = (available * BigInt(percent)) / 100n;
    if (form.side === "sell") qty = budget;
    else if (form.type === "limit") {
      const price = dec($("trd-price").value);
      if (!price) {
        fieldError("price", "Enter a price first.");
        return;
      }
      // Room for the taker fee, so even 100% is an order the balance covers.
      qty = (budget * ONE * BPS) / (price * (BPS + max(spec.takerBps, 0n)));
    } else {
      for (const level of sorted("asks")) {
        const levelCost = cost(level.units, level.amount);
        const withFee = levelCost + feeOf(levelCost, max(spec.takerBps, 0n));
        if (withFee <= budget) {
          qty += level.amount;
          budget -= withFee;
        } else {
          qty += (budget * ONE * BPS) / (level.units * (BPS + max(spec.takerBps, 0n)));
          break;
        }
      }
    }
    if (spec.lot) qty -= qty % spec.lot;
    $("trd-qty").value = qty > 0n ? fmt(qty, spec.qd) : "";
    fieldError("qty", "");
    updateSummary();
  }

  function setSide(side) {
    form.side = side;
    $("trd-form").dataset.side = side;
    setPressed($("trd-form"), "data-side", side);
    form.cid = null;
    updateSummary();
  }

  function setType(type) {
    form.type = type;
    $("trd-form").dataset.type = type;
    setPressed($("trd-form"), "data-type", type);
    $("trd-price-field").hidden = type === "market";
    form.cid = null;
    updateSummary();
  }

  // --- Loading ------------------------------------------------------------------------------------------

  const path = (symbol) => `/api/markets/${encodeURIComponent(symbol)}`;

  async function loadBook(symbol) {
    book.loading = true;
    try {
      const data = await app.api(`${path(symbol)}/book?depth=${BOOK_DEPTH}`);
      // The hub's snapshot is newer than any answer that raced it; deltas that came meanwhile
      // name absolute quantities, so they go back on top.
      if (spec?.symbol !== symbol || book.fromHub) return;
      applyBook(data, true);
      for (const delta of book.early) applyBook(delta, false);
    } finally {
      book.loading = false;
      book.early = [];
    }
  }

  async function loadTape(symbol) {
    const trades = await app.api(`${path(symbol)}/trades?limit=${TAPE_SIZE}`);
    if (spec?.symbol === symbol && Array.isArray(trades)) addTrades(trades, true);
  }

  async function loadCandles(symbol) {
    const candles = await app.api(`${path(symbol)}/candles?tf=1m&limit=${CANDLES}`);
    if (spec?.symbol === symbol && Array.isArray(candles)) setBars(candles);
  }

  async function loadBalances() {
    const list = await app.api("/api/balances");
    for (const view of Array.isArray(list) ? list : []) balances.set(view.asset, dec(view.available) ?? 0n);
    updateSummary();
  }

  async function loadOpen() {
    const orders = await app.api("/api/orders?status=open");
    open.clear();
    for (const order of Array.isArray(orders) ? orders : []) upsertOrder(order);
    renderOpen();
  }

  async function loadMine(more = false) {
    const before = more && mineNext ? `&before=${encodeURIComponent(mineNext)}` : "";
    const page = await app.api(`/api/trades?limit=${MINE_PAGE}${before}`);
    if (!more) {
      mine = [];
      mineKeys.clear();
    }
    addMine(Array.isArray(page?.trades) ? page.trades : [], { append: true });
    mineNext = page?.next ?? null;
    $("trd-mine-more").hidden = !mineNext;
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

  // --- Markets ------------------------------------------------------------------------------------------

  function renderMarkets() {
    $("trd-markets").replaceChildren(...markets.map((m) => {
      const button = el("button", "", m.base);
      button.type = "button";
      button.dataset.market = m.symbol;
      button.setAttribute("aria-label", m.symbol);
      button.setAttribute("aria-pressed", String(m.symbol === spec?.symbol));
      return button;
    }));
  }

  function chooseMarket(symbol) {
    const next = markets.find((m) => m.symbol === symbol) ?? markets[0];
    if (!next || next.symbol === spec?.symbol) return null;
    const old = spec ? marketTopics(spec.symbol) : [];
    spec = next;
    try { localStorage.setItem(MARKET_KEY, spec.symbol); } catch { /* private mode: not kept */ }
    book.bids.clear();
    book.asks.clear();
    book.fromHub = false;
    book.early = [];
    tape = [];
    chart.bars = [];
    chart.series?.setData([]);
    markChart();
    applyChartMarket();
    $("trd-last").className = "trd-last";
    $("trd-last").textContent = spec.last_price ?? "–";
    lastPrice = spec.last_price ?? null;
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

  // --- Live updates -------------------------------------------------------------------------------

  const marketTopics = (symbol) => [`book:${symbol}`, `trades:${symbol}`, `candles:${symbol}:1m`];
  // topic → its unsubscribe. The page's one socket (static/js/hub.js) hands frames over in seq
  // order, resuming after a drop; a topic it had to start over is resynced.
  const subscriptions = new Map();

  function resubscribe(old) {
    for (const topic of old) {
      subscriptions.get(topic)?.();
      subscriptions.delete(topic);
    }
    for (const topic of [`user:${app.user().id}`, ...marketTopics(spec.symbol)]) {
      if (subscriptions.has(topic) || !app.hub) continue;
      subscriptions.set(topic, app.hub.subscribe(topic, { frame: onFrame, resynced: () => recover(topic) }));
    }
  }

  /** Frames went missing: state topics start again from the snapshot that follows, event topics are refetched. */
  function recover(topic) {
    if (topic.startsWith("trades:")) loadTape(spec.symbol).catch(showError);
    else if (topic.startsWith("user:")) loadAccount();
  }

  function onFrame(frame) {
    const { topic, type, data } = frame;
    if (!subscriptions.has(topic) || data == null) return;

    if (topic.startsWith("book:")) {
      if (type === "snapshot") book.fromHub = true;
      else if (book.loading && !book.fromHub) book.early.push(data);
      applyBook(data, type === "snapshot");
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

  // --- Events -------------------------------------------------------------------------------------

  $("trd-markets").addEventListener("click", (event) => {
    const button = event.target.closest("[data-market]");
    if (!button || button.dataset.market === spec?.symbol) return;
    haptic("select");
    chooseMarket(button.dataset.market);
  });

  $("trd-form").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-side], button[data-type], button[data-pct]");
    if (!button || !spec) return;
    if (button.dataset.side && button.dataset.side !== form.side) {
      haptic("select");
      setSide(button.dataset.side);
    } else if (button.dataset.type && button.dataset.type !== form.type) {
      haptic("select");
      setType(button.dataset.type);
    } else if (button.dataset.pct) fillShare(Number(button.dataset.pct));
  });

  $("trd-form").addEventListener("input", (event) => {
    form.cid = null; // a changed order is a new order
    if (event.target.id === "trd-price" || event.target.id === "trd-qty") fieldError(event.target.id.slice(4), "");
    $("trd-form-error").textContent = "";
    updateSummary();
  });

  $("trd-form").addEventListener("submit", submit);

  // Tapping a level of the book takes its price.
  for (const id of ["trd-asks", "trd-bids"]) {
    $(id).addEventListener("click", (event) => {
      const level = event.target.closest("[data-price]");
      if (!level) return;
      if (form.type !== "limit") setType("limit");
      $("trd-price").value = level.dataset.price;
      fieldError("price", "");
      form.cid = null;
      haptic("select");
      updateSummary();
    });
  }

  $("trd-open").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-order]");
    if (!button) return;
    button.disabled = true;
    $("trd-open-error").textContent = "";
    try {
      upsertOrder(await app.api(`/api/orders/${encodeURIComponent(button.dataset.order)}`, { method: "DELETE" }));
    } catch (error) {
      if (error.status === 404 || error.status === 409) {
        // Filled or cancelled meanwhile: it is not open any more either way.
        upsertOrder({ id: button.dataset.order, status: "closed" });
        loadOpen().catch(() => {});
      } else {
        button.disabled = false;
        $("trd-open-error").textContent = error.message || "Could not cancel the order.";
      }
    }
  });

  $("trd-mine-more").addEventListener("click", () => loadMine(true).catch(showError));

  // Demo funds, where the server offers them (demo sign-in is on: never in production).
  $("trd-faucet").hidden = document.body.dataset.demo !== "1";
  $("trd-faucet").addEventListener("click", async () => {
    const button = $("trd-faucet");
    button.disabled = true;
    $("trd-form-error").textContent = "";
    try {
      const added = (await app.api("/api/faucet", { method: "POST" })) ?? [];
      const list = added.filter((a) => dec(a.added) > 0n).map((a) => `${a.added} ${a.asset}`);
      $("trd-form-note").textContent = list.length ? `Added ${list.join(", ")}.` : "Your demo balances are full.";
      await loadBalances();
    } catch (error) {
      if (error.status === 403 || error.status === 404) button.hidden = true;
      $("trd-form-error").textContent = error.message || "Could not add demo funds.";
    } finally {
      button.disabled = false;
    }
  });

  // Back from the background (the hub's socket reconnects by itself): a tab that failed to load tries again.
  tg?.onEvent?.("activated", () => {
    if (root.dataset.state !== "ready") start();
  });

  // --- Start: once signed in and the panel is first shown ------------------------------------------

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
    markets = list.filter((m) => m?.symbol).map(specOf);
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
})();
