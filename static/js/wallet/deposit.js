// Deposits: the chain picker, the user's USDT deposit address on it (with its QR code), or the
// "not open yet" state where the chain has no vault (409 deposits_unavailable), and the history.
import { app } from "../app.js?v=533bbedc808c";
import { $, el, setPressed } from "../lib/dom.js?v=7b1b01db74f5";
import { when } from "../lib/time.js?v=ac20f7f0ed91";
import { chainLabel, explorerUrl, shortAddress, STATUS } from "./format.js?v=40031651f837";
import { renderQr } from "./qr.js?v=d5396bcc572a";

const ASSET = "USDT";
const CHAIN_KEY = "simplrefq.wallet.chain";

let chains = []; // GET /api/chains
let chosen = null;
let address = null;

export async function loadChains() {
  const list = await app.api("/api/chains");
  chains = Array.isArray(list) ? list : [];
  $("wlt-chains").replaceChildren(...chains.map((chain) => {
    const button = el("button", "", chainLabel(chain.chain));
    button.type = "button";
    button.dataset.chain = chain.chain;
    return button;
  }));
  let saved = null;
  try { saved = localStorage.getItem(CHAIN_KEY); } catch { /* private mode */ }
  await choose(chains.some((c) => c.chain === saved) ? saved : chains[0]?.chain);
}

function closed(chain) {
  $("wlt-deposit").hidden = true;
  $("wlt-deposit-closed-title").textContent = `Deposits on ${chainLabel(chain)} are not open yet`;
  $("wlt-deposit-closed").hidden = false;
  $("wallet").dataset.deposit = "closed";
}

async function choose(name) {
  const chain = chains.find((c) => c.chain === name);
  if (!chain) return;
  chosen = name;
  try { localStorage.setItem(CHAIN_KEY, name); } catch { /* not kept */ }
  setPressed($("wlt-chains"), "data-chain", name);
  $("wlt-deposit-error").textContent = "";
  if (!chain.open) return closed(name);
  let view;
  try {
    view = await app.api(`/api/deposits/address?chain=${encodeURIComponent(name)}&asset=${ASSET}`);
  } catch (error) {
    if (name !== chosen) return;
    if (error.data?.error === "deposits_unavailable") return closed(name);
    $("wlt-deposit").hidden = $("wlt-deposit-closed").hidden = true;
    $("wlt-deposit-error").textContent = error.message || "Could not load your deposit address.";
    return;
  }
  if (name !== chosen) return;
  address = view.address;
  const asset = chain.assets?.find((a) => a.asset === ASSET);
  $("wlt-address").textContent = address;
  $("wlt-deposit-rules").textContent =
    `Send only ${ASSET} on ${chainLabel(name)} to this address.` +
    (asset ? ` Minimum ${asset.minimum} ${ASSET};` : "") +
    ` credited after ${chain.confirmations} confirmations.`;
  $("wlt-deposit-closed").hidden = true;
  $("wlt-deposit").hidden = false;
  $("wallet").dataset.deposit = "open";
  renderQr($("wlt-qr"), address, $("wallet").dataset.qrLib).catch(() => {
    $("wlt-qr").replaceChildren(); // the address and its copy button are enough
  });
}

export async function loadHistory() {
  const list = await app.api("/api/deposits");
  const rows = (Array.isArray(list) ? list : []).map((d) => {
    const item = el("li", "wlt-row");
    const link = explorerUrl(d.chain, d.tx_hash);
    const tx = link ? el("a", "wlt-tx", shortAddress(d.tx_hash)) : el("span", "wlt-tx", shortAddress(d.tx_hash));
    if (link) {
      tx.href = link;
      tx.target = "_blank";
      tx.rel = "noopener";
    }
    const confirmations = Math.min(d.confirmations, d.required);
    item.append(
      el("span", "wlt-name", `${d.amount} ${d.asset}`),
      el("span", `wlt-tag is-${d.status}`, STATUS[d.status] ?? d.status),
      el("span", "hint wlt-small", `${chainLabel(d.chain)} · ${confirmations}/${d.required} conf. · ${when(d.created_at)}`),
      tx,
    );
    return item;
  });
  if (!rows.length) rows.push(el("li", "hint wlt-small", "No deposits yet."));
  $("wlt-history").replaceChildren(...rows);
}

export function wireDeposits() {
  $("wlt-chains").addEventListener("click", (event) => {
    const button = event.target.closest("[data-chain]");
    if (button && button.dataset.chain !== chosen) choose(button.dataset.chain);
  });
  $("wlt-copy").addEventListener("click", async () => {
    if (!address) return;
    const button = $("wlt-copy");
    try {
      await navigator.clipboard.writeText(address);
      button.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren($("wlt-address"));
      button.textContent = "Selected";
    }
    setTimeout(() => { button.textContent = "Copy address"; }, 2000);
  });
}
