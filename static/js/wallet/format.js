// The Wallet tab's words and strings: pure functions, no DOM (tests/js/wallet.test.mjs).

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
