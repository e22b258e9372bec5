// The order form: side and type, price and amount checked on the market's tick and lot grids,
// the balance-share buttons, placing the order (one client id per order the user means) and
// the demo faucet.
import { app } from "../app.js?v=533bbedc808c";
import { affordable, cost, feeOf, floorTo, format, max, onGrid, parse, trim } from "../lib/decimal.js?v=54417b8016f9";
import { $, haptic, setPressed } from "../lib/dom.js?v=7b1b01db74f5";
import { buzzFill, upsertOrder } from "./orders.js?v=c1362b7344fd";
import { balances, form, sorted, state } from "./state.js?v=b93ca559ce41";
import { estimate, loadBalances, spending, updateSummary } from "./summary.js?v=c1e7766501d1";

// The server's codes for a field it refused: the message goes under that field.
const SERVER_FIELDS = { invalid_price: "price", invalid_quantity: "qty" };

function newOrderId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fieldError(name, message) {
  $(`trd-${name}-error`).textContent = message || "";
  $(`trd-${name}`).setAttribute("aria-invalid", String(Boolean(message)));
}

export function clearErrors() {
  fieldError("price", "");
  fieldError("qty", "");
  $("trd-form-error").textContent = "";
}

/** The order to send, or null after showing why not. */
function checkedOrder() {
  const { spec } = state;
  clearErrors();
  const order = { market: spec.symbol, side: form.side, type: form.type };
  const priceText = $("trd-price").value.trim();
  const qtyText = $("trd-qty").value.trim();
  const price = parse(priceText);
  const qty = parse(qtyText);
  let ok = true;
  if (form.type === "limit") {
    const problem = !priceText ? "Enter a price."
      : !price ? "Enter a price above 0."
      : !onGrid(price, spec.tick) ? `The price must be a multiple of ${spec.tick_size}.` : "";
    if (problem) { fieldError("price", problem); ok = false; }
    else order.price = format(price, spec.pd);
  }
  const qtyProblem = !qtyText ? "Enter an amount."
    : !qty ? "Enter an amount above 0."
    : !onGrid(qty, spec.lot) ? `The amount must be a multiple of ${spec.lot_size} ${spec.base}.` : "";
  if (qtyProblem) { fieldError("qty", qtyProblem); ok = false; }
  else order.qty = format(qty, spec.qd);
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

async function submit(event) {
  event.preventDefault();
  if (form.busy || !state.spec) return;
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
    if (parse(placed?.filled) > 0n) buzzFill();
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
  const filled = parse(order.filled) ?? 0n;
  const at = order.avg_price ? ` at ${order.avg_price}` : "";
  if (order.status === "filled") return `Filled: ${order.side === "sell" ? "sold" : "bought"} ${order.filled} ${base}${at}.`;
  if (order.status === "open") return filled > 0n ? `Placed; ${order.filled} of ${order.qty} ${base} filled so far.` : "Order placed.";
  return filled > 0n ? `Filled ${order.filled} of ${order.qty} ${base}${at}; the rest ${order.status}.` : `Order ${order.status}.`;
}

/** The 25/50/75/100% buttons: the amount that share of the balance buys or sells, fee included. */
function fillShare(percent) {
  const { spec } = state;
  const available = balances.get(spending());
  if (!spec || available == null) return;
  const takerBps = max(spec.takerBps, 0n);
  let qty = 0n;
  let budget = (available * BigInt(percent)) / 100n;
  if (form.side === "sell") qty = budget;
  else if (form.type === "limit") {
    const price = parse($("trd-price").value);
    if (!price) {
      fieldError("price", "Enter a price first.");
      return;
    }
    // Room for the taker fee, so even 100% is an order the balance covers.
    qty = affordable(budget, price, takerBps);
  } else {
    for (const level of sorted("asks")) {
      const levelCost = cost(level.units, level.amount);
      const withFee = levelCost + feeOf(levelCost, takerBps);
      if (withFee <= budget) {
        qty += level.amount;
        budget -= withFee;
      } else {
        qty += affordable(budget, level.units, takerBps);
        break;
      }
    }
  }
  qty = floorTo(qty, spec.lot);
  $("trd-qty").value = qty > 0n ? format(qty, spec.qd) : "";
  fieldError("qty", "");
  updateSummary();
}

export function setSide(side) {
  form.side = side;
  $("trd-form").dataset.side = side;
  setPressed($("trd-form"), "data-side", side);
  form.cid = null;
  updateSummary();
}

export function setType(type) {
  form.type = type;
  $("trd-form").dataset.type = type;
  setPressed($("trd-form"), "data-type", type);
  $("trd-price-field").hidden = type === "market";
  form.cid = null;
  updateSummary();
}

/** A level of the book tapped: a limit order at its price. */
export function takePrice(price) {
  if (form.type !== "limit") setType("limit");
  $("trd-price").value = price;
  fieldError("price", "");
  form.cid = null;
  haptic("select");
  updateSummary();
}

/** Demo funds, where the server offers them (demo sign-in is on: never in production). */
async function addDemoFunds(button) {
  button.disabled = true;
  $("trd-form-error").textContent = "";
  try {
    const added = (await app.api("/api/faucet", { method: "POST" })) ?? [];
    const list = added.filter((a) => parse(a.added) > 0n).map((a) => `${a.added} ${a.asset}`);
    $("trd-form-note").textContent = list.length ? `Added ${list.join(", ")}.` : "Your demo balances are full.";
    await loadBalances();
  } catch (error) {
    if (error.status === 403 || error.status === 404) button.hidden = true;
    $("trd-form-error").textContent = error.message || "Could not add demo funds.";
  } finally {
    button.disabled = false;
  }
}

export function wireForm() {
  $("trd-form").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-side], button[data-type], button[data-pct]");
    if (!button || !state.spec) return;
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

  $("trd-faucet").hidden = document.body.dataset.demo !== "1";
  $("trd-faucet").addEventListener("click", () => addDemoFunds($("trd-faucet")));
}
