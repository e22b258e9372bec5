// Linking a TON wallet through TON Connect: the vendored TON Connect UI (fetched on the first
// click) asks the wallet for a ton_proof of the payload the server handed out
// (POST /api/wallets/challenge), and the proof goes to POST /api/wallets/link as the wallet sent it.
import { app } from "../app.js?v=533bbedc808c";
import { loadScript } from "../lib/script.js?v=a0d4822859f1";

let ui = null;
let pending = null; // {resolve, reject} of the link in progress

async function connector(root) {
  if (ui) return ui;
  const lib = await loadScript(root.dataset.tonLib, "TON_CONNECT_UI");
  ui = new lib.TonConnectUI({ manifestUrl: new URL(root.dataset.tonManifest, location.href).href });
  ui.onStatusChange(onStatus, (error) => settle()?.reject(error));
  // Closed without choosing a wallet: the link is off (a choice closes it with "wallet-selected").
  ui.onModalStateChange?.((state) => {
    if (state?.status === "closed" && state.closeReason !== "wallet-selected") settle()?.reject(cancelled());
  });
  return ui;
}

function settle() {
  const current = pending;
  pending = null;
  return current;
}

function cancelled() {
  const error = new Error("Cancelled.");
  error.code = 4001; // as an EIP-1193 refusal: nothing to show as an error
  return error;
}

async function onStatus(wallet) {
  if (!wallet || !pending) return;
  const { resolve, reject } = settle();
  const proof = wallet.connectItems?.tonProof;
  if (!proof || !("proof" in proof)) {
    reject(new Error("The wallet sent no proof of its address."));
  } else {
    try {
      resolve(await app.api("/api/wallets/link", {
        method: "POST",
        body: {
          kind: "ton_proof",
          address: wallet.account.address,
          network: String(wallet.account.chain ?? ""),
          public_key: wallet.account.publicKey,
          state_init: wallet.account.walletStateInit,
          proof: proof.proof,
        },
      }));
    } catch (error) {
      reject(error);
    }
  }
  // The proof was for this link only: the page keeps no TON Connect session.
  ui.disconnect().catch(() => {});
}

/** Opens TON Connect's wallet list; resolves with the linked wallet once the proof is checked. */
export async function linkTon(root) {
  const tc = await connector(root);
  if (tc.connected) await tc.disconnect().catch(() => {});
  const challenge = await app.api("/api/wallets/challenge", { method: "POST", body: { kind: "ton_proof" } });
  tc.setConnectRequestParameters({ state: "ready", value: { tonProof: challenge.challenge } });
  const linked = new Promise((resolve, reject) => { pending = { resolve, reject }; });
  // TON Connect UI styles its modal inline and fetches the wallet list and its bridges from
  // their own hosts: where the page's Content-Security-Policy refuses that, its modal would
  // never show and the link would wait forever. Say so instead.
  const blocked = () => {
    const current = settle();
    if (!current) return;
    tc.closeModal?.();
    current.reject(new Error("Linking a TON wallet is not available in this app yet."));
  };
  document.addEventListener("securitypolicyviolation", blocked);
  try {
    await tc.openModal();
    return await linked;
  } finally {
    document.removeEventListener("securitypolicyviolation", blocked);
  }
}
