// The market's recent trades and its last price (green up, red down).
import { parse } from "../lib/decimal.js?v=54417b8016f9";
import { $, el } from "../lib/dom.js?v=7b1b01db74f5";
import { clock, ms } from "../lib/time.js?v=ac20f7f0ed91";
import { state } from "./state.js?v=b93ca559ce41";

export const TAPE_SIZE = 30;

export function showLast(price) {
  const node = $("trd-last");
  const now = parse(price);
  const before = parse(state.lastPrice);
  if (now == null) return;
  if (before != null && now !== before) node.className = `trd-last ${now > before ? "is-up" : "is-down"}`;
  state.lastPrice = price;
  node.textContent = price;
}

/** Adds trades (from the API or the hub; repeats are dropped), or starts over with `replace`. */
export function addTrades(trades, replace = false) {
  if (replace) state.tape = [];
  const seen = new Set(state.tape.map((t) => String(t.id)));
  const fresh = trades.filter((t) => t && t.price && !seen.has(String(t.id)));
  state.tape = [...fresh, ...state.tape].sort((a, b) => ms(b.at) - ms(a.at)).slice(0, TAPE_SIZE);
  if (state.tape.length) showLast(state.tape[0].price);
  $("trd-trades").replaceChildren(...state.tape.map((t) => {
    const row = el("li", "trd-row");
    row.append(el("span", t.side === "sell" ? "is-sell" : "is-buy", t.price), el("span", "", t.qty), el("span", "", clock(t.at)));
    return row;
  }));
  $("trd-trades-empty").hidden = state.tape.length > 0;
}
