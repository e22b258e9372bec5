// The Wallet tab's pure helpers (static/js/wallet/format.js): the EIP-4361 message the tab asks
// the wallet to sign (line for line what backend/chains/siwe.py parses), explorer links, labels,
// and the withdraw form's checks and words.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  cancellable, explorerUrl, maxAmount, plain, receiveOf, shortAddress, siweChainId, siweMessage,
  WITHDRAWAL_STATUS, withdrawalOutcome, withdrawMessage, withdrawProblem,
} from "../../static/js/wallet/format.js";

const CHALLENGE = { challenge: "a1B2c3D4e5F6g7H8", domain: "app.example.test", uri: "https://app.example.test", chain_ids: [1, 56] };
const ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

test("the SIWE message follows EIP-4361 line for line", () => {
  const message = siweMessage(CHALLENGE, ADDRESS, 56, new Date("2026-12-07T15:04:05.678Z"));
  assert.equal(message, [
    "app.example.test wants you to sign in with your Ethereum account:",
    ADDRESS,
    "",
    "Link this wallet to SimplRefQ.",
    "",
    "URI: https://app.example.test",
    "Version: 1",
    "Chain ID: 56",
    "Nonce: a1B2c3D4e5F6g7H8",
    "Issued At: 2026-12-07T15:04:05Z",
  ].join("\n"));
});

test("the message names the wallet's chain when the server takes it, else the first it takes", () => {
  assert.equal(siweChainId("0x38", [1, 56]), 56);
  assert.equal(siweChainId("0x89", [1, 56]), 1);
  assert.equal(siweChainId(null, [1, 56]), 1);
});

test("explorer links only for known chains and well-formed hashes", () => {
  const hash = `0x${"ab".repeat(32)}`;
  assert.equal(explorerUrl("ethereum", hash), `https://etherscan.io/tx/${hash}`);
  assert.equal(explorerUrl("bnb", hash), `https://bscscan.com/tx/${hash}`);
  assert.equal(explorerUrl("bnb", "0xnope"), null);
  assert.equal(explorerUrl("tron", hash), null);
});

test("short addresses keep the start and the end", () => {
  assert.equal(shortAddress(ADDRESS), "0x5aAe…eAed");
  assert.equal(shortAddress("0:abc"), "0:abc");
});

// Withdrawals: the checks made before the wallet is asked to sign, what arrives, "Max", and the
// refusals in words.

const TERMS = { fee: "1", minimum: "10", maximum: "20000", daily: "50000", approval_above: "100" };

test("an amount is checked against the limits and the balance before signing", () => {
  assert.equal(withdrawProblem("25", "10000.000000", TERMS), null);
  assert.equal(withdrawProblem("25,5", "10000", TERMS), null);
  assert.equal(withdrawProblem("", "10000", TERMS), "invalid_amount");
  assert.equal(withdrawProblem("0", "10000", TERMS), "invalid_amount");
  assert.equal(withdrawProblem("-5", "10000", TERMS), "invalid_amount");
  assert.equal(withdrawProblem("1e3", "10000", TERMS), "invalid_amount");
  assert.equal(withdrawProblem("9.99", "10000", TERMS), "below_minimum");
  assert.equal(withdrawProblem("20000.01", "50000", TERMS), "above_maximum");
  assert.equal(withdrawProblem("15000", "10000.000000", TERMS), "insufficient_funds");
  assert.equal(withdrawProblem("10000", "10000.000000", TERMS), null);
  assert.equal(withdrawProblem("15000", null, TERMS), null); // the server checks what we do not know
});

test("what arrives is the amount less the fee; Max is the balance up to the largest withdrawal", () => {
  assert.equal(receiveOf("25", "1"), "24");
  assert.equal(receiveOf("25.5", "0.001"), "25.499");
  assert.equal(receiveOf("1", "1"), null);
  assert.equal(receiveOf("abc", "1"), null);
  assert.equal(maxAmount("10000.000000", TERMS), "10000");
  assert.equal(maxAmount("25000.5", TERMS), "20000");
  assert.equal(maxAmount("0", TERMS), "0");
  assert.equal(plain("24.000000"), "24");
  assert.equal(plain("0.001000"), "0.001");
});

test("refusals read as sentences, never as the server's JSON", () => {
  const context = { asset: "USDT", chain: "ethereum", terms: TERMS, available: "10000.000000" };
  assert.equal(withdrawMessage("insufficient_funds", context), "Not enough USDT: 10000 USDT available.");
  assert.equal(withdrawMessage("below_minimum", context), "The smallest withdrawal is 10 USDT.");
  assert.equal(withdrawMessage("above_maximum", context), "The largest withdrawal is 20000 USDT.");
  assert.equal(withdrawMessage("daily_limit", context), "That goes over your 24-hour limit of 50000 USDT.");
  assert.equal(withdrawMessage("chain_unavailable", context), "The Ethereum network did not answer: try again in a moment.");
  assert.match(withdrawMessage("authorization_invalid", context), /receiving wallet/);
  assert.match(withdrawMessage("withdrawal_in_flight", context), /still on its way/);
  assert.match(withdrawMessage("invalid_address", context), /not an EVM address/);
  assert.equal(withdrawMessage(undefined, context), "Could not withdraw. Try again in a moment.");
  assert.equal(withdrawMessage("something_new", {}), "Could not withdraw. Try again in a moment.");
  const codes = ["invalid_amount", "below_minimum", "above_maximum", "insufficient_funds", "daily_limit",
    "withdrawal_in_flight", "authorization_invalid", "authorization_stale", "withdrawals_unavailable",
    "chain_unavailable", "unknown_chain", "unknown_asset", "invalid_address", "withdrawal_not_cancellable"];
  for (const code of codes) {
    const text = withdrawMessage(code, context);
    assert.notEqual(text, withdrawMessage("something_new", context), code);
    assert.doesNotMatch(text, /[{}_]|undefined|null/, code);
  }
});

test("statuses have labels; only unsent withdrawals may be cancelled; endings say what came back", () => {
  assert.equal(WITHDRAWAL_STATUS.pending_approval, "Awaiting approval");
  assert.deepEqual(
    Object.keys(WITHDRAWAL_STATUS).filter(cancellable),
    ["pending_approval", "queued"],
  );
  assert.equal(withdrawalOutcome({ status: "failed", error: "vault_short", refunded: true }),
    "The vault could not cover it right now · amount returned");
  assert.equal(withdrawalOutcome({ status: "failed", error: "authorization_expired", refunded: false }),
    "Your signature expired before it was sent · returning the amount");
  assert.equal(withdrawalOutcome({ status: "cancelled", error: null, refunded: true }), "Amount returned");
  assert.equal(withdrawalOutcome({ status: "refused", error: null, refunded: false }), "Nothing was debited");
  assert.equal(withdrawalOutcome({ status: "sent", error: null, refunded: false }), "");
});
