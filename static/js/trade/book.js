// The order book ladder: asks above the spread, bids below, each level with its running total
// and a depth bar; tapping a level takes its price into the form. Fed by the REST book and the
// hub's book topic (a snapshot, then deltas naming absolute quantities).
import { app } from "../app.js?v=533bbedc808c";
import { format, max, parse, share, trim } from "../lib/decimal.js?v=54417b8016f9";
import { $, el } from "../lib/dom.js?v=7b1b01db74f5";
import { takePrice } from "./form.js?v=b0868399e9ba";
import { book, sorted, state } from "./state.js?v=b93ca559ce41";
import { updateSummary } from "./summary.js?v=c1e7766501d1";

const LEVELS = 8; // per side: asks, spread and bids stay within one phone screen
const BOOK_DEPTH = 20;

let bookFrame = 0;
const renderBookSoon = () => { bookFrame ||= requestAnimationFrame(renderBook); };

function setLevels(side, levels, replace) {
  if (replace) book[side].clear();
  for (const level of Array.isArray(levels) ? levels : []) {
    const [price, qty] = level;
    if (parse(qty) > 0n) book[side].set(price, qty);
    else book[side].delete(price);
  }
}

/** A book snapshot (`replace`) or delta: [[price, qty], ...] per side, qty 0 removes a level. */
export function applyBook(data, replace) {
  setLevels("bids", data?.bids, replace);
  setLevels("asks", data?.asks, replace);
  renderBookSoon();
  updateSummary();
}

function ladder(side, levels, total) {
  const { spec } = state;
  let cumulative = 0n;
  const rows = levels.map((level) => {
    cumulative += level.amount;
    const button = el("button", "trd-level");
    button.type = "button";
    button.dataset.price = level.price;
    button.setAttribute("aria-label", `${side === "asks" ? "Sell" : "Buy"} order: ${level.qty} ${spec.base} at ${level.price}; use this price`);
    button.append(el("span", "", level.price), el("span", "", level.qty), el("span", "", trim(cumulative, spec.qd, spec.qd)));
    // A custom property set through the CSSOM: allowed where style attributes are not.
    button.style.setProperty("--depth", share(cumulative, total));
    const item = el("li");
    item.append(button);
    return item;
  });
  return side === "asks" ? rows.reverse() : rows;
}

export function renderBook() {
  bookFrame = 0;
  const { spec } = state;
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
    spread.replaceChildren(el("span", "", "Spread"), el("span", "", `${format(gap, spec.pd)} · ${percent}%`));
  } else {
    spread.replaceChildren(el("span", "", "Spread"), el("span", "", "–"));
  }
}

/** Another market: an empty book until its own arrives. */
export function resetBook() {
  book.bids.clear();
  book.asks.clear();
  book.fromHub = false;
  book.early = [];
}

export async function loadBook(symbol) {
  book.loading = true;
  try {
    const data = await app.api(`/api/markets/${encodeURIComponent(symbol)}/book?depth=${BOOK_DEPTH}`);
    // The hub's snapshot is newer than any answer that raced it; deltas that came meanwhile
    // name absolute quantities, so they go back on top.
    if (state.spec?.symbol !== symbol || book.fromHub) return;
    applyBook(data, true);
    for (const delta of book.early) applyBook(delta, false);
  } finally {
    book.loading = false;
    book.early = [];
  }
}

/** A frame of the hub's book topic. */
export function onBookFrame(type, data) {
  if (type === "snapshot") book.fromHub = true;
  else if (book.loading && !book.fromHub) book.early.push(data);
  applyBook(data, type === "snapshot");
}

/** Tapping a level of the book takes its price. */
export function wireBook() {
  for (const id of ["trd-asks", "trd-bids"]) {
    $(id).addEventListener("click", (event) => {
      const level = event.target.closest("[data-price]");
      if (level) takePrice(level.dataset.price);
    });
  }
}
