// Withdrawals: the form (chain, asset, amount, the receiving wallet), the quote that wallet
// signs (EIP-712 through the page's EIP-1193 provider, eth_signTypedData_v4), the request, and
// the history with its Cancel. The vault pays only what the receiving wallet signed, so the
// signer is always the wallet the coins go to. Rows move live: the tab hands the hub's
// withdrawal events to onEvent().
import { app } from "../app.js?v=533bbedc808c";
import { $, el, haptic, setPressed } from "../lib/dom.js?v=7b1b01db74f5";
import { when } from "../lib/time.js?v=ac20f7f0ed91";
import {
  cancellable, chainLabel, explorerUrl, maxAmount, plain, receiveOf, shortAddress,
  WITHDRAWAL_STATUS, withdrawalOutcome, withdrawMessage, withdrawProblem,
} from "./format.js?v=40031651f837";
import { declined, hasProvider } from "./evm.js?v=c60768ce3e51";

const NO_WALLET =
  "Connect an EVM wallet to withdraw: open this page in your wallet's built-in browser (MetaMask, Trust Wallet, OKX…). The receiving wallet signs the withdrawal.";
// A burst of events (sent, then confirmed, then the balance) refetches the list once.
const REFRESH_DELAY_MS = 300;
// The refusals that are about the receiving wallet rather than the amount.
const ADDRESS_ERRORS = new Set(["invalid_address", "authorization_invalid"]);

/**
 * `available(asset)`: the balance free to withdraw (a decimal string, or null when unknown);
 * `confirm(text)`: resolves true when the user agrees.
 */
export function mountWithdrawals({ available, confirm }) {
  let chains = []; // GET /api/chains, those paying withdrawals
  let chain = null; // the chosen one
  let asset = "USDT";
  let busy = false;
  let refreshTimer = 0;
  const rows = new Map(); // id → WithdrawalView, newest first as listed

  const form = $("wlt-withdraw");
  const amountInput = $("wlt-wd-amount");
  const addressInput = $("wlt-wd-address");
  const submit = $("wlt-wd-submit");

  const terms = () => chain?.assets.find((a) => a.asset === asset)?.withdrawals ?? null;
  const context = () => ({ asset, chain: chain?.chain, terms: terms(), available: available(asset) });

  /** The line above the button; `field`: the input it is about, marked invalid. */
  function say(text, tone = "ok", field = null) {
    $("wlt-wd-note").textContent = text;
    $("wlt-wd-note").dataset.tone = tone;
    for (const input of [amountInput, addressInput]) input.setAttribute("aria-invalid", String(input === field));
  }

  // --- The form ----------------------------------------------------------------------------------

  function pair(label, value) {
    const row = el("div");
    row.append(el("dt", "", label), el("dd", "", value));
    return row;
  }

  /** Fee, what arrives, the limits and the approval threshold: the quote's where there is one. */
  function summarize(quote = null) {
    const limits = terms();
    if (!limits) return $("wlt-wd-summary").replaceChildren();
    const receive = quote ? plain(quote.receive) : receiveOf(amountInput.value, limits.fee);
    const approval = quote
      ? (quote.needs_approval ? "Needed: an admin approves it first" : "Not needed")
      : `Above ${plain(limits.approval_above)} ${asset}`;
    $("wlt-wd-summary").replaceChildren(
      pair("Fee", `${plain(quote ? quote.fee : limits.fee)} ${asset}`),
      pair("You receive", receive ? `${receive} ${asset}` : "—"),
      pair("Limits", `${plain(limits.minimum)} – ${plain(limits.maximum)} ${asset} · ${plain(limits.daily)} a day`),
      pair("Approval", approval),
    );
    $("wlt-wd-summary").dataset.quoted = String(Boolean(quote));
  }

  function showAvailable() {
    const have = available(asset);
    $("wlt-wd-available").textContent = have == null ? "" : `${plain(have)} ${asset} available`;
  }

  function pickAsset(name) {
    asset = name;
    setPressed($("wlt-wd-assets"), "data-asset", name);
    showAvailable();
    summarize();
  }

  function pickChain(name) {
    chain = chains.find((c) => c.chain === name) ?? null;
    if (!chain) return;
    setPressed($("wlt-wd-chains"), "data-chain", name);
    const paid = chain.assets.filter((a) => a.withdrawals);
    $("wlt-wd-assets").replaceChildren(...paid.map((a) => {
      const button = el("button", "", a.asset);
      button.type = "button";
      button.dataset.asset = a.asset;
      return button;
    }));
    pickAsset(paid.some((a) => a.asset === asset) ? asset : paid[0]?.asset);
  }

  /** The provider's connected account, when it shares one without asking. */
  async function prefill() {
    if (!hasProvider()) return say(NO_WALLET, "info");
    try {
      const [account] = await window.ethereum.request({ method: "eth_accounts" });
      if (account && !addressInput.value) addressInput.value = account;
    } catch { /* the user types it, and the wallet is asked on submit */ }
  }

  async function loadChains() {
    const list = await app.api("/api/chains");
    chains = (Array.isArray(list) ? list : []).filter((c) => c.withdrawals_open && c.assets.some((a) => a.withdrawals));
    $("wlt-wd-chains").replaceChildren(...chains.map((c) => {
      const button = el("button", "", chainLabel(c.chain));
      button.type = "button";
      button.dataset.chain = c.chain;
      return button;
    }));
    form.hidden = !chains.length;
    $("wlt-withdraw-closed").hidden = chains.length > 0;
    $("wallet").dataset.withdraw = chains.length ? "open" : "closed";
    if (!chains.length) return;
    pickChain(chains.some((c) => c.chain === chain?.chain) ? chain.chain : chains[0].chain);
    await prefill();
  }

  /** The provider's account for `address`, asked for when not shared yet; null: not this wallet. */
  async function signer(address) {
    const accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
    return (accounts ?? []).find((a) => a.toLowerCase() === address.toLowerCase()) ?? null;
  }

  async function withdraw(event) {
    event.preventDefault();
    if (busy || !chain) return;
    const amount = amountInput.value.trim();
    const problem = withdrawProblem(amount, available(asset), terms());
    if (problem) {
      haptic("error");
      return say(withdrawMessage(problem, context()), "error", amountInput);
    }
    if (!hasProvider()) return say(NO_WALLET, "info");
    const address = addressInput.value.trim();
    if (!address) return say("Enter the wallet to receive it, or connect one.", "error", addressInput);
    busy = submit.disabled = true;
    say("Preparing…", "info");
    try {
      const body = { chain: chain.chain, asset, amount, address };
      const quote = await app.api("/api/withdrawals/quote", { method: "POST", body });
      summarize(quote);
      const account = await signer(quote.address);
      if (!account) {
        haptic("error");
        return say(`Only the receiving wallet can sign: switch your wallet to ${shortAddress(quote.address)}, or withdraw to the connected one.`, "error", addressInput);
      }
      say("Sign the withdrawal in your wallet…", "info");
      const signature = await window.ethereum.request({
        method: "eth_signTypedData_v4",
        params: [account, JSON.stringify(quote.typed_data)],
      });
      const view = await app.api("/api/withdrawals", {
        method: "POST",
        body: { ...body, address: quote.address, deadline: quote.deadline, signature },
      });
      rows.set(view.id, view);
      renderHistory();
      amountInput.value = "";
      summarize();
      say(view.status === "pending_approval"
        ? `Requested: ${plain(view.amount)} ${view.asset} waits for an admin's approval.`
        : `Requested: ${plain(view.receive)} ${view.asset} is on its way to ${shortAddress(view.address)}.`);
      haptic("success");
    } catch (error) {
      if (declined(error)) {
        say("Cancelled: nothing was sent.", "info");
      } else {
        const code = error?.data?.error;
        say(withdrawMessage(code, context()), "error", ADDRESS_ERRORS.has(code) ? addressInput : amountInput);
        haptic("error");
      }
    } finally {
      busy = submit.disabled = false;
    }
  }

  form.addEventListener("submit", withdraw);
  amountInput.addEventListener("input", () => {
    if ($("wlt-wd-note").dataset.tone !== "info") say("", "info");
    summarize();
  });
  $("wlt-wd-max").addEventListener("click", () => {
    const have = available(asset);
    if (have == null || !terms()) return;
    amountInput.value = maxAmount(have, terms());
    summarize();
  });
  $("wlt-wd-chains").addEventListener("click", (event) => {
    const button = event.target.closest("[data-chain]");
    if (button) pickChain(button.dataset.chain);
  });
  $("wlt-wd-assets").addEventListener("click", (event) => {
    const button = event.target.closest("[data-asset]");
    if (button) pickAsset(button.dataset.asset);
  });

  // --- The history -------------------------------------------------------------------------------

  /** Where it stands beyond its status: confirmations to come, when it arrived, how it ended. */
  function progress(w) {
    if (w.status === "sent") {
      const needed = w.required ?? chains.find((c) => c.chain === w.chain)?.confirmations;
      if (!needed) return "confirming";
      return `confirming: ${Math.min(w.confirmations ?? 0, needed)}/${needed} blocks`;
    }
    if (w.status === "confirmed") return w.confirmed_at ? `arrived ${when(w.confirmed_at)}` : "arrived";
    return withdrawalOutcome(w) || when(w.created_at);
  }

  function renderHistory() {
    const items = [...rows.values()].sort((a, b) => b.id - a.id).map((w) => {
      const item = el("li", "wlt-row");
      item.dataset.withdrawal = w.id;
      item.dataset.status = w.status;
      item.append(
        el("span", "wlt-name", `${plain(w.amount)} ${w.asset}`),
        el("span", `wlt-tag is-${w.status}`, WITHDRAWAL_STATUS[w.status] ?? w.status),
      );
      if (cancellable(w.status)) {
        const cancel = el("button", "wlt-unlink", "Cancel");
        cancel.type = "button";
        cancel.dataset.cancel = w.id;
        cancel.setAttribute("aria-label", `Cancel the withdrawal of ${plain(w.amount)} ${w.asset}`);
        item.append(cancel);
      }
      item.append(el("span", "hint wlt-small wlt-sub", `${chainLabel(w.chain)} · to ${shortAddress(w.address)} · ${progress(w)}`));
      if (w.tx_hash) {
        const link = explorerUrl(w.chain, w.tx_hash);
        const tx = el(link ? "a" : "span", "wlt-tx", shortAddress(w.tx_hash));
        if (link) {
          tx.href = link;
          tx.target = "_blank";
          tx.rel = "noopener";
        }
        item.append(tx);
      }
      return item;
    });
    if (!items.length) items.push(el("li", "hint wlt-small", "No withdrawals yet."));
    $("wlt-withdrawals").replaceChildren(...items);
  }

  async function loadHistory() {
    const list = await app.api("/api/withdrawals");
    rows.clear();
    for (const view of Array.isArray(list) ? list : []) rows.set(view.id, view);
    renderHistory();
  }

  $("wlt-withdrawals").addEventListener("click", async (event) => {
    const button = event.target.closest("[data-cancel]");
    if (!button) return;
    const label = button.getAttribute("aria-label").replace(/^Cancel the withdrawal/, "the withdrawal");
    if (!(await confirm(`Cancel ${label}? The amount comes back to your balance.`))) return;
    button.disabled = true;
    try {
      const view = await app.api(`/api/withdrawals/${encodeURIComponent(button.dataset.cancel)}`, { method: "DELETE" });
      rows.set(view.id, view);
      renderHistory();
      say("Withdrawal cancelled: the amount comes back to your balance.");
    } catch (error) {
      button.disabled = false;
      say(withdrawMessage(error?.data?.error, context()), "error");
    }
  });

  /** A hub event ({type: "withdrawal", id, status, error, tx_hash, refunded, …}). */
  function onEvent(data) {
    const known = rows.get(data.id);
    if (known) {
      rows.set(data.id, { ...known, status: data.status, error: data.error, tx_hash: data.tx_hash, refunded: data.refunded });
      renderHistory();
    }
    // The event carries no times or block: read the list once the burst is over.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => loadHistory().catch(() => {}), REFRESH_DELAY_MS);
  }

  return { loadChains, loadHistory, onEvent, balancesChanged: showAvailable };
}
