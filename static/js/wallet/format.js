// The Wallet tab's words and strings: pure functions, no DOM (tests/js/wallet.test.mjs).
import { parse, trim } from "../lib/decimal.js?v=54417b8016f9";

export const CHAINS = {
  ethereum: { label: "Ethereum", explorer: "https://etherscan.io/tx/" },
  bnb: { label: "BNB Chain", explorer: "https://bscscan.com/tx/" },
};

export const chainLabel = (chain) => CHAINS[chain]?.label ?? String(chain);

/** The block explorer's page of a transaction, or null for a chain without one. */
export function explorerUrl(chain, txHash) {
  const base = CHAINS[chain]?.explorer;
  return base && /^0x[0-9a-fA-F]{64}$/.test(txHash) ? base + txHash : null;
}

/** "0x1234…abcd": the start and end of an address, which is what people compare. */
export function shortAddress(address, keep = 6) {
  const text = String(address ?? "");
  return text.length <= keep * 2 + 1 ? text : `${text.slice(0, keep)}…${text.slice(-4)}`;
}

export const kindLabel = (kind) => (kind === "ton_proof" ? "TON" : kind === "siwe" ? "EVM" : String(kind));

export const STATUS = {
  seen: "Confirming", credited: "Credited", dropped: "Dropped",
  below_minimum: "Below minimum", unknown_user: "Not credited",
};

/** Our statement in the sign-in message: EIP-4361 allows no line feed and only URI characters. */
export const SIWE_STATEMENT = "Link this wallet to SimplRefQ.";

/**
 * The EIP-4361 message for `challenge` (POST /api/wallets/challenge), line for line as
 * backend/chains/siwe.py parses it. `address` must be EIP-55 as the wallet returned it.
 */
export function siweMessage(challenge, address, chainId, issuedAt = new Date()) {
  return [
    `${challenge.domain} wants you to sign in with your Ethereum account:`,
    address,
    "",
    SIWE_STATEMENT,
    "",
    `URI: ${challenge.uri}`,
    "Version: 1",
    `Chain ID: ${chainId}`,
    `Nonce: ${challenge.challenge}`,
    `Issued At: ${issuedAt.toISOString().replace(/\.\d{3}Z$/, "Z")}`,
  ].join("\n");
}

/** The message's chain: the wallet's own when the server takes it, else the first it takes. */
export function siweChainId(walletChainId, allowed) {
  const id = Number.parseInt(walletChainId, walletChainId?.startsWith?.("0x") ? 16 : 10);
  return allowed.includes(id) ? id : allowed[0];
}

// --- Withdrawals ------------------------------------------------------------------------------

export const WITHDRAWAL_STATUS = {
  requested: "Requested", pending_approval: "Awaiting approval", queued: "Queued",
  sent: "Sending", confirmed: "Confirmed", failed: "Failed", cancelled: "Cancelled",
  rejected: "Rejected", refused: "Refused",
};

/** Not sent yet: the user may still take it back (DELETE /api/withdrawals/{id}). */
export const cancellable = (status) => status === "pending_approval" || status === "queued";

/** A decimal string without the zeros it needs not show: "24.000000" → "24". */
export function plain(text) {
  const units = parse(text);
  return units == null ? String(text ?? "") : trim(units, 18, 0);
}

/**
 * What keeps `amount` from being withdrawn, checked before the wallet is asked to sign: the
 * server's error code for it, or null. `terms` is the asset's fee and limits on the chain
 * (GET /api/chains); `available` the balance free to withdraw (null: not known here).
 */
export function withdrawProblem(amount, available, terms) {
  const units = parse(amount);
  if (units == null || units === 0n) return "invalid_amount";
  if (units < parse(terms.minimum)) return "below_minimum";
  if (units > parse(terms.maximum)) return "above_maximum";
  if (available != null && units > (parse(available) ?? 0n)) return "insufficient_funds";
  return null;
}

/** What arrives for `amount` (the fee is taken from it), or null where there is no amount. */
export function receiveOf(amount, fee) {
  const units = parse(amount);
  const cost = parse(fee) ?? 0n;
  return units == null || units <= cost ? null : trim(units - cost, 18, 0);
}

/** "Max": the whole available balance, but no more than one withdrawal may be. */
export function maxAmount(available, terms) {
  const have = parse(available) ?? 0n;
  const most = parse(terms.maximum) ?? have;
  return trim(have < most ? have : most, 18, 0);
}

/**
 * A refusal in words, from its error code (the API's `error`): `context` has the `asset`, the
 * `chain`, its `terms` and the `available` balance. Unknown codes get a plain sentence, never
 * the server's JSON.
 */
export function withdrawMessage(code, { asset = "", chain = "", terms = null, available = null } = {}) {
  const where = chainLabel(chain);
  switch (code) {
    case "invalid_amount": return "Enter the amount to withdraw, e.g. 25 or 25.5.";
    case "below_minimum":
      return terms ? `The smallest withdrawal is ${plain(terms.minimum)} ${asset}.` : "That is below the smallest withdrawal.";
    case "above_maximum":
      return terms ? `The largest withdrawal is ${plain(terms.maximum)} ${asset}.` : "That is above the largest withdrawal.";
    case "insufficient_funds":
      return available == null ? `Not enough ${asset} available.` : `Not enough ${asset}: ${plain(available)} ${asset} available.`;
    case "daily_limit":
      return `That goes over your 24-hour limit${terms ? ` of ${plain(terms.daily)} ${asset}` : ""}.`;
    case "withdrawal_in_flight":
      return "Your last withdrawal to this wallet on this chain is still on its way: wait for it, or cancel it below.";
    case "authorization_invalid":
      return "The signature is not the receiving wallet's: connect that wallet in this browser and sign again.";
    case "authorization_stale": return "The signed quote went stale: press Withdraw again to sign a fresh one.";
    case "withdrawals_unavailable": return `Withdrawals on ${where} are not open right now.`;
    case "chain_unavailable": return `The ${where} network did not answer: try again in a moment.`;
    case "unknown_chain": return `Withdrawals on ${where} are not supported.`;
    case "unknown_asset": return `${asset} is not paid out on ${where}.`;
    case "invalid_address": return "That is not an EVM address: 0x and 40 hex digits (check their upper and lower case).";
    case "withdrawal_not_cancellable": return "It is already on its way: it can no longer be cancelled.";
    default: return "Could not withdraw. Try again in a moment.";
  }
}

// Why a withdrawal failed (the vault's refusal, backend/chains/vault.py), in words.
const FAILURES = {
  vault_short: "the vault could not cover it right now",
  vault_paused: "withdrawals are paused",
  authorization_expired: "your signature expired before it was sent",
  authorization_used: "the signature was already used",
  authorization_out_of_order: "the signature was for another withdrawal",
  authorization_invalid: "the signature was not accepted",
  exit_pending: "this wallet has an exit pending",
  operator_not_allowed: "the payout service is not set up",
  reverted: "the transaction failed",
};

/** The history's word on how a withdrawal ended unpaid: why, and whether the amount is back. */
export function withdrawalOutcome(view) {
  const ended = ["failed", "cancelled", "rejected", "refused"].includes(view.status);
  if (!ended) return "";
  const why = view.status === "failed" ? (FAILURES[view.error] ?? "it could not be sent") : "";
  // Refused: the debit never happened, so nothing is to come back.
  const back = view.status === "refused" ? "nothing was debited" : view.refunded ? "amount returned" : "returning the amount";
  return why ? `${why[0].toUpperCase()}${why.slice(1)} · ${back}` : back[0].toUpperCase() + back.slice(1);
}
