// The user's open orders (with Cancel) and their own fills, newest first.
import { app } from "../app.js?v=533bbedc808c";
import { parse } from "../lib/decimal.js?v=54417b8016f9";
import { $, el, haptic } from "../lib/dom.js?v=7b1b01db74f5";
import { ms, when } from "../lib/time.js?v=ac20f7f0ed91";
import { mineKeys, orders, state } from "./state.js?v=b93ca559ce41";

const MINE_PAGE = 20;
// Several fills of one order land within milliseconds: one buzz for the burst.
const BUZZ_GAP_MS = 800;

let lastBuzz = 0;
export function buzzFill() {
  if (Date.now() - lastBuzz < BUZZ_GAP_MS) return;
  lastBuzz = Date.now();
  haptic("success");
}

/** An order view from any source: open ones are listed, anything else takes it off for good. */
export function upsertOrder(order) {
  if (!order || order.id == null) return;
  const id = String(order.id);
  const known = orders.open.get(id);
  if (order.status === "open" && !orders.closed.has(id)) {
    if (known && ms(known.updated_at) > ms(order.updated_at)) return; // an older view, late
    orders.open.set(id, order);
  } else if (order.status && order.status !== "open") {
    orders.closed.add(id);
    orders.open.delete(id);
  }
  renderOpen();
}

function renderOpen() {
  const list = [...orders.open.values()].sort((a, b) => ms(b.created_at) - ms(a.created_at));
  $("trd-open").replaceChildren(...list.map((order) => {
    const row = el("li", "trd-row");
    const base = order.market?.split("-")[0] ?? "";
    const what = order.type === "market" ? `${order.qty} ${base} at market` : `${order.qty} ${base} @ ${order.price}`;
    const cancel = el("button", "trd-cancel", "Cancel");
    cancel.type = "button";
    cancel.dataset.order = String(order.id);
    cancel.setAttribute("aria-label", `Cancel ${order.side} ${what}`);
    const filled = parse(order.filled) > 0n ? ` · filled ${order.filled} of ${order.qty}` : "";
    row.append(
      el("span", `trd-tag ${order.side === "sell" ? "is-sell" : "is-buy"}`, order.side),
      el("span", "trd-grow", what), cancel,
      el("span", "trd-sub", `${order.market} · ${order.type}${order.tif && order.tif !== "GTC" ? ` ${order.tif}` : ""}${filled} · ${when(order.created_at)}`),
    );
    return row;
  }));
  $("trd-open-empty").hidden = list.length > 0;
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
  state.mine = append ? [...state.mine, ...fresh] : [...fresh, ...state.mine];
  $("trd-mine").replaceChildren(...state.mine.map(fillRow));
  $("trd-mine-empty").hidden = state.mine.length > 0;
}

/** A fill of the user's, live from the hub. */
export function onFill(fill) {
  addMine([fill]);
  buzzFill();
  const verb = fill.side === "sell" ? "Sold" : "Bought";
  $("trd-form-note").textContent = `${verb} ${fill.qty} ${String(fill.market).split("-")[0]} at ${fill.price}`;
}

export async function loadOpen() {
  const list = await app.api("/api/orders?status=open");
  orders.open.clear();
  for (const order of Array.isArray(list) ? list : []) upsertOrder(order);
  renderOpen();
}

/** The first page of the user's fills, or the next one with `more`. */
export async function loadMine(more = false) {
  const before = more && state.mineNext ? `&before=${encodeURIComponent(state.mineNext)}` : "";
  const page = await app.api(`/api/trades?limit=${MINE_PAGE}${before}`);
  if (!more) {
    state.mine = [];
    mineKeys.clear();
  }
  addMine(Array.isArray(page?.trades) ? page.trades : [], { append: true });
  state.mineNext = page?.next ?? null;
  $("trd-mine-more").hidden = !state.mineNext;
}

/** The Cancel button of an open order. */
export async function cancelOrder(button) {
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
}
