// The Trade tab's state, shared by its modules (book, chart, form, orders, tape): what the
// server said last, plus what the user is typing. Amounts are BigInt units (lib/decimal.js).
import { parse, places } from "../lib/decimal.js?v=54417b8016f9";

export const state = {
  markets: [],
  spec: null, // the chosen market (specOf)
  tape: [], // the market's trades, newest first
  lastPrice: null,
  mine: [], // the user's fills, newest first
  mineNext: null, // the cursor of the next page of them
};

/** price string → qty string per side; `early` holds deltas that came while the REST book loaded. */
export const book = { bids: new Map(), asks: new Map(), fromHub: false, loading: false, early: [] };
export const orders = {
  open: new Map(), // order id → order view
  closed: new Set(), // ids seen filled or cancelled: a late "open" view must not revive them
};
export const mineKeys = new Set();
export const balances = new Map(); // asset → available units
/** `cid` is the client order id of the order being placed: one per order the user means. */
export const form = { side: "buy", type: "limit", busy: false, cid: null };

/** A market as the API lists it, with its grids and fees in units. */
export function specOf(m) {
  const pd = Number.isInteger(m.price_decimals) ? m.price_decimals : places(m.tick_size);
  const qd = Number.isInteger(m.qty_decimals) ? m.qty_decimals : places(m.lot_size);
  const [base, quote] = m.symbol.split("-");
  return {
    ...m, pd, qd,
    base: m.base || base, quote: m.quote || quote,
    tick: parse(m.tick_size) || 0n, lot: parse(m.lot_size) || 0n,
    minNotional: parse(m.min_notional) ?? 0n,
    makerBps: BigInt(m.maker_fee_bps ?? 0), takerBps: BigInt(m.taker_fee_bps ?? 0),
  };
}

/** One side of the book, best price first: [{price, qty, units, amount}]. */
export const sorted = (side) => [...book[side]]
  .map(([price, qty]) => ({ price, qty, units: parse(price) ?? 0n, amount: parse(qty) ?? 0n }))
  .sort((a, b) => (side === "asks" ? (a.units < b.units ? -1 : 1) : (a.units > b.units ? -1 : 1)));

export const best = (side) => sorted(side)[0]?.units ?? null;
