// What the order being typed would cost or fetch, its fee, and the balance it spends: the
// lines under the order form, redone on every keystroke, book change and balance event.
import { app } from "../app.js?v=533bbedc808c";
import { cost, feeOf, parse, trim } from "../lib/decimal.js?v=54417b8016f9";
import { $ } from "../lib/dom.js?v=7b1b01db74f5";
import { balances, best, form, sorted, state } from "./state.js?v=b93ca559ce41";

/** The asset the order spends: the quote to buy, the base to sell. */
export const spending = () => (form.side === "buy" ? state.spec.quote : state.spec.base);

/** What a market order for `qty` would cost or fetch, walking the book: [qty covered, value]. */
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
export function estimate(price, qty) {
  const { spec } = state;
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

export function updateSummary() {
  const { spec } = state;
  if (!spec) return;
  const asset = spending();
  const available = balances.get(asset);
  $("trd-available").textContent = available == null ? "–" : `${trim(available, 9, 2)} ${asset}`;
  const guess = estimate(parse($("trd-price").value), parse($("trd-qty").value));
  const approx = form.type === "market" ? "≈ " : "";
  $("trd-total").textContent = guess ? `${approx}${trim(guess.value, spec.pd + spec.qd)} ${spec.quote}${guess.partial ? " (book too thin)" : ""}` : "–";
  $("trd-fee").textContent = guess
    ? `${approx}${trim(feeOf(guess.value, guess.bps), spec.pd + spec.qd)} ${spec.quote} (${Number(guess.bps) / 100}%)`
    : "–";
  const button = $("trd-submit");
  button.disabled = form.busy;
  if (!form.busy) button.textContent = `${form.side === "buy" ? "Buy" : "Sell"} ${spec.base}`;
}

/** A balance event from the hub. */
export function setBalance(view) {
  if (!view?.asset) return;
  balances.set(view.asset, parse(view.available) ?? 0n);
  updateSummary();
}

export async function loadBalances() {
  const list = await app.api("/api/balances");
  for (const view of Array.isArray(list) ? list : []) balances.set(view.asset, parse(view.available) ?? 0n);
  updateSummary();
}
