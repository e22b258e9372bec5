// Exact decimals for the order form. Prices and amounts stay decimal strings on the wire; here
// they become BigInt units of 10**-SCALE, so the tick and lot grids are checked exactly (floats
// would put 0.3 off a 0.1 grid). Pure functions, no DOM: tests/js/decimal.test.mjs runs them in Node.

// More places than any asset has (ETH has 18): every price and amount fits without rounding.
export const SCALE = 18;
export const ONE = 10n ** BigInt(SCALE);
// Fees are quoted in basis points: 10,000 of them make 100%.
export const BPS = 10_000n;

/** "5.2" → BigInt units; null for anything but a plain non-negative decimal (a comma is a point). */
export function parse(text) {
  const match = /^(\d*)(?:[.,](\d*))?$/.exec(String(text ?? "").trim());
  if (!match || !(match[1] || match[2])) return null;
  const fraction = (match[2] ?? "").replace(/0+$/, "");
  if (fraction.length > SCALE) return null;
  return BigInt(match[1] || "0") * ONE + BigInt(fraction.padEnd(SCALE, "0"));
}

/** Units → a fixed-point string with `places` decimals (truncated toward zero). */
export function format(units, places) {
  const negative = units < 0n;
  const digits = ((negative ? -units : units) / 10n ** BigInt(SCALE - places)).toString().padStart(places + 1, "0");
  const text = places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
  return negative && /[1-9]/.test(text) ? `-${text}` : text;
}

/** Like format, without trailing zeros beyond `keep` decimals: "52.000000" → "52.00". */
export function trim(units, places, keep = 2) {
  const text = format(units, places);
  const point = text.indexOf(".");
  if (point < 0) return text;
  let end = text.length;
  while (end > point + 1 + keep && text[end - 1] === "0") end--;
  return text.slice(0, end === point + 1 ? point : end);
}

/** How many decimals a decimal string is written with: "0.010" → 3. */
export const places = (text) => (String(text).split(".")[1] ?? "").length;

/** price × qty, both in units: the value of an amount at a price (truncated). */
export const cost = (price, qty) => (price * qty) / ONE;

/** The fee on `value` at `bps` basis points (truncated: the server rounds its own). */
export const feeOf = (value, bps) => (value * bps) / BPS;

export const max = (a, b) => (a > b ? a : b);

/** Whether `units` lies on the `step` grid (a tick or a lot); a zero step is no grid. */
export const onGrid = (units, step) => !step || units % step === 0n;

/** `units` rounded down to the `step` grid; a zero step leaves it as it is. */
export const floorTo = (units, step) => (step ? units - (units % step) : units);

/** The amount `budget` buys at `price` when a fee of `bps` is paid on top (truncated). */
export const affordable = (budget, price, bps) => (budget * ONE * BPS) / (price * (BPS + bps));

/** part / whole as a string with `digits` decimals, "0" when whole is not positive (book depth bars). */
export function share(part, whole, digits = 3) {
  if (whole <= 0n) return "0";
  const scale = 10n ** BigInt(digits);
  return (Number((part * scale) / whole) / Number(scale)).toFixed(digits);
}
