// The Wallet tab's pure helpers (static/js/wallet/format.js): the EIP-4361 message the tab asks
// the wallet to sign (line for line what backend/chains/siwe.py parses), explorer links, labels.
import assert from "node:assert/strict";
import { test } from "node:test";

import { explorerUrl, shortAddress, siweChainId, siweMessage } from "../../static/js/wallet/format.js";

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
