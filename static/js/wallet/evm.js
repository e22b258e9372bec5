// Linking an EVM wallet: the page's injected EIP-1193 provider (a wallet's in-app browser, or
// an extension) gives the account, signs our EIP-4361 message (personal_sign), and the server
// checks it (POST /api/wallets/link). Without a provider there is nothing to sign with here.
import { app } from "../app.js?v=533bbedc808c";
import { siweChainId, siweMessage } from "./format.js?v=40031651f837";

export const NO_PROVIDER =
  "No EVM wallet in this browser. Open this page in your wallet's built-in browser (MetaMask, Trust Wallet, OKX…) to link it.";

export const hasProvider = () => typeof window.ethereum?.request === "function";

/** Links the provider's first account; resolves with the linked wallet (the server's view). */
export async function linkEvm() {
  const provider = window.ethereum;
  if (!hasProvider()) throw new Error(NO_PROVIDER);
  const [address] = await provider.request({ method: "eth_requestAccounts" });
  if (!address) throw new Error("The wallet shared no account.");
  const challenge = await app.api("/api/wallets/challenge", { method: "POST", body: { kind: "siwe" } });
  let walletChain = null;
  try { walletChain = await provider.request({ method: "eth_chainId" }); } catch { /* the first we take */ }
  const message = siweMessage(challenge, address, siweChainId(walletChain, challenge.chain_ids));
  // personal_sign takes the message as hex of its UTF-8 bytes (plain text is accepted by most
  // wallets, the hex form by all of them).
  const hex = "0x" + Array.from(new TextEncoder().encode(message), (b) => b.toString(16).padStart(2, "0")).join("");
  const signature = await provider.request({ method: "personal_sign", params: [hex, address] });
  return app.api("/api/wallets/link", { method: "POST", body: { kind: "siwe", address, message, signature } });
}

/** A wallet's refusal (EIP-1193 code 4001) is no error to show as one. */
export const declined = (error) => error?.code === 4001;
