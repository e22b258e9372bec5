// The risk panel: the horizon's volatility, its 95% value at risk, and the position whose VaR
// loss is the user's chosen share of their balance (GET /api/signals/{market}, signed in).
// Money stays a decimal string; the loss at the limit is worked out exactly (lib/decimal.js).
import { $, el, setPressed } from "../lib/dom.js?v=7b1b01db74f5";
import { format, parse } from "../lib/decimal.js?v=54417b8016f9";
import { amount, horizonText, percent } from "./format.js?v=630e7193a70d";

/** value × fraction as a decimal string (truncated), or null for a malformed value. */
export function share(value, fraction) {
  const units = parse(value);
  if (units == null || !Number.isFinite(fraction)) return null;
  const millionths = BigInt(Math.round(fraction * 1e6));
  return format((units * millionths) / 1_000_000n, 8);
}

/**
 * Fills the panel. `risk` is null when there is none to show (signed out, or still loading),
 * `quote` the asset the balance is in when the API does not say.
 */
export function renderRisk(signal, risk, { quote = "", signedIn = true } = {}) {
  const horizon = horizonText(signal);
  $("sig-risk-horizon").textContent = horizon ? `over the next ${horizon}` : "";
  $("sig-vol").textContent = percent(risk?.volatility ?? signal.volatility);
  $("sig-var").textContent = percent(risk?.var95 ?? signal.var95);
  const text = $("sig-risk-text");
  if (!risk) {
    $("sig-size").textContent = "–";
    $("sig-size-label").textContent = "Position";
    text.textContent = signedIn ? "" : "Sign in to see a position size for your balance.";
    return;
  }
  const asset = risk.asset || quote;
  const size = `${amount(risk.suggested_size)} ${asset}`.trim();
  $("sig-size").textContent = amount(risk.suggested_size);
  $("sig-size-label").textContent = asset ? `Position (${asset})` : "Position";
  const balance = parse(risk.balance);
  if (balance == null || balance === 0n) {
    text.textContent = `Your ${asset} balance is empty: take demo funds in the Trade tab to see a position size.`;
    return;
  }
  // The position's own VaR loss: the budget, or less where the size is capped at the balance.
  const loss = share(risk.suggested_size, risk.var95 ?? signal.var95);
  const capped = parse(risk.suggested_size) === balance;
  text.textContent =
    `Risking ${percent(risk.risk_fraction)} of your ${amount(risk.balance)} ${asset}: a position of ${size} ` +
    `loses more than ${amount(loss)} ${asset} only one time in twenty over the next ${horizon}.` +
    (capped ? " Capped at your balance (no leverage)." : "");
}

/** The risk-per-trade buttons, the `current` share pressed. */
export function renderRiskChoices(choices, current) {
  const group = $("sig-risk-choice");
  group.replaceChildren(...choices.map((fraction) => {
    const button = el("button", "", percent(fraction, fraction * 100 < 1 ? 1 : 0));
    button.type = "button";
    button.dataset.risk = String(fraction);
    button.setAttribute("aria-label", `Risk ${percent(fraction)} of the balance per trade`);
    return button;
  }));
  setPressed(group, "data-risk", String(current));
  group.hidden = !choices.length;
}
