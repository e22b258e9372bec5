// Words and numbers for the Signals tab: pure functions, no DOM (tests/js/signals.test.mjs runs
// them in Node). The API sends fractions (0.542) and TA-Lib pattern names (CDLENGULFING).

const UNIT_SECONDS = { m: 60, h: 3600, d: 86400 };

/** Seconds in a candle interval such as "15m", "1h" or "1d"; null for anything else. */
export function intervalSeconds(interval) {
  const match = /^(\d+)([mhd])$/.exec(String(interval ?? ""));
  return match && Number(match[1]) > 0 ? Number(match[1]) * UNIT_SECONDS[match[2]] : null;
}

/** "hourly", "daily", "15-minute", "4-hour": the close a signal waits for. */
export function closeWord(interval) {
  const match = /^(\d+)([mhd])$/.exec(String(interval ?? ""));
  if (!match) return "next";
  if (match[1] === "1" && match[2] !== "m") return match[2] === "h" ? "hourly" : "daily";
  return `${match[1]}-${{ m: "minute", h: "hour", d: "day" }[match[2]]}`;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A span of hours in words: "45 minutes", "1 hour", "4 hours", "2 days", "36 hours". */
export function hoursText(hours) {
  if (!Number.isFinite(hours) || hours <= 0) return "";
  if (hours < 1) return plural(Math.round(hours * 60), "minute");
  if (hours >= 24 && hours % 24 === 0) return plural(hours / 24, "day");
  return plural(Math.round(hours * 10) / 10, "hour");
}

/** How far a signal looks ahead, in words: horizon_hours, else horizon bars of its interval. */
export function horizonText(signal) {
  const seconds = intervalSeconds(signal?.interval);
  const hours = Number.isFinite(signal?.horizon_hours)
    ? signal.horizon_hours
    : seconds && Number.isFinite(signal?.horizon) ? (signal.horizon * seconds) / 3600 : NaN;
  if (Number.isFinite(hours)) return hoursText(hours);
  return Number.isFinite(signal?.horizon) ? plural(signal.horizon, "bar") : "";
}

/** A fraction as a percentage: 0.5423 → "54.2%"; "–" where there is no number. */
export function percent(value, digits = 1) {
  return typeof value === "number" && Number.isFinite(value) ? `${(value * 100).toFixed(digits)}%` : "–";
}

/** A change as a signed percentage: 0.123 → "+12.3%", -0.04 → "−4.0%". */
export function signedPercent(value, digits = 1) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  const text = percent(Math.abs(value), digits);
  return Number(text.slice(0, -1)) === 0 ? text : `${value < 0 ? "\u2212" : "+"}${text}`;
}

/** A 95% interval: [0.491, 0.55] → "49.1–55.0%"; "" where there is none. */
export function intervalText(ci, digits = 1) {
  if (!Array.isArray(ci) || ci.length !== 2 || !ci.every((v) => Number.isFinite(v))) return "";
  return `${(ci[0] * 100).toFixed(digits)}\u2013${(ci[1] * 100).toFixed(digits)}%`;
}

/** The model's lean: the direction and the probability of that direction (not always of "up"). */
export function leanOf(signal) {
  const up = Number(signal?.probability_up);
  const direction = signal?.direction === "down" || signal?.direction === "up"
    ? signal.direction
    : up > 0.5 ? "up" : "down";
  return { direction, probability: direction === "up" ? up : 1 - up };
}

/** The verdict's reason as short sentences: the "no edge found:" lead-in is the badge already. */
export function reasonParts(reason) {
  const text = String(reason ?? "").trim().replace(/^(?:no edge found|edge found|no edge over the baseline|better than the baseline)\s*:\s*/i, "");
  return text
    .split(/;\s+/)
    .map((part) => part.trim().replace(/\.$/, ""))
    .filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1));
}

// TA-Lib's candlestick functions by their usual names; an unknown one is spelled out from its own.
const PATTERN_NAMES = {
  CDL2CROWS: "Two crows", CDL3BLACKCROWS: "Three black crows", CDL3INSIDE: "Three inside up/down",
  CDL3LINESTRIKE: "Three-line strike", CDL3OUTSIDE: "Three outside up/down",
  CDL3STARSINSOUTH: "Three stars in the south", CDL3WHITESOLDIERS: "Three white soldiers",
  CDLABANDONEDBABY: "Abandoned baby", CDLADVANCEBLOCK: "Advance block", CDLBELTHOLD: "Belt hold",
  CDLBREAKAWAY: "Breakaway", CDLCLOSINGMARUBOZU: "Closing marubozu",
  CDLCONCEALBABYSWALL: "Concealing baby swallow", CDLCOUNTERATTACK: "Counterattack",
  CDLDARKCLOUDCOVER: "Dark cloud cover", CDLDOJI: "Doji", CDLDOJISTAR: "Doji star",
  CDLDRAGONFLYDOJI: "Dragonfly doji", CDLENGULFING: "Engulfing", CDLEVENINGDOJISTAR: "Evening doji star",
  CDLEVENINGSTAR: "Evening star", CDLGAPSIDESIDEWHITE: "Side-by-side white lines",
  CDLGRAVESTONEDOJI: "Gravestone doji", CDLHAMMER: "Hammer", CDLHANGINGMAN: "Hanging man",
  CDLHARAMI: "Harami", CDLHARAMICROSS: "Harami cross", CDLHIGHWAVE: "High wave", CDLHIKKAKE: "Hikkake",
  CDLHIKKAKEMOD: "Modified hikkake", CDLHOMINGPIGEON: "Homing pigeon",
  CDLIDENTICAL3CROWS: "Identical three crows", CDLINNECK: "In-neck", CDLINVERTEDHAMMER: "Inverted hammer",
  CDLKICKING: "Kicking", CDLKICKINGBYLENGTH: "Kicking by length", CDLLADDERBOTTOM: "Ladder bottom",
  CDLLONGLEGGEDDOJI: "Long-legged doji", CDLLONGLINE: "Long line", CDLMARUBOZU: "Marubozu",
  CDLMATCHINGLOW: "Matching low", CDLMATHOLD: "Mat hold", CDLMORNINGDOJISTAR: "Morning doji star",
  CDLMORNINGSTAR: "Morning star", CDLONNECK: "On-neck", CDLPIERCING: "Piercing",
  CDLRICKSHAWMAN: "Rickshaw man", CDLRISEFALL3METHODS: "Rising/falling three methods",
  CDLSEPARATINGLINES: "Separating lines", CDLSHOOTINGSTAR: "Shooting star", CDLSHORTLINE: "Short line",
  CDLSPINNINGTOP: "Spinning top", CDLSTALLEDPATTERN: "Stalled pattern", CDLSTICKSANDWICH: "Stick sandwich",
  CDLTAKURI: "Takuri", CDLTASUKIGAP: "Tasuki gap", CDLTHRUSTING: "Thrusting", CDLTRISTAR: "Tristar",
  CDLUNIQUE3RIVER: "Unique three river", CDLUPSIDEGAP2CROWS: "Upside gap two crows",
  CDLXSIDEGAP3METHODS: "Up/down-gap three methods",
};

/** "CDLENGULFING" → "Engulfing"; a name it does not know loses the CDL and keeps the rest. */
export function patternName(name) {
  const key = String(name ?? "");
  if (PATTERN_NAMES[key]) return PATTERN_NAMES[key];
  const bare = key.replace(/^CDL/, "").toLowerCase();
  return bare ? bare[0].toUpperCase() + bare.slice(1) : "Pattern";
}

/** A decimal string shortened for a narrow screen: "12345.678901" → "12345.67" (cut, not rounded). */
export function amount(text, places = 2) {
  const match = /^(-?\d+)(?:\.(\d*))?$/.exec(String(text ?? "").trim());
  if (!match) return "–";
  const fraction = (match[2] ?? "").slice(0, places).padEnd(places, "0");
  const whole = match[1].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return places ? `${whole}.${fraction}` : whole;
}
