// Wallet tab: balances (live through the hub, user:<ID>), linked wallets (unlink, link a TON
// wallet through TON Connect or an EVM one through the page's EIP-1193 provider), the USDT
// deposit address per chain and the deposit history, the withdraw form and the withdrawals
// (live from the same topic). The flows live under wallet/.
import { app } from "./app.js?v=533bbedc808c";
import { $, el, haptic, inTelegram, telegram } from "./lib/dom.js?v=7b1b01db74f5";
import { parse, trim } from "./lib/decimal.js?v=54417b8016f9";
import { loadChains, loadHistory, wireDeposits } from "./wallet/deposit.js?v=d5c7a4ab4ba8";
import { declined, hasProvider, linkEvm, NO_PROVIDER } from "./wallet/evm.js?v=c60768ce3e51";
import { kindLabel, shortAddress } from "./wallet/format.js?v=40031651f837";
import { linkTon } from "./wallet/ton.js?v=3fd4231adaf7";
import { mountWithdrawals } from "./wallet/withdraw.js?v=56935dab0128";

// A balance event per asset, and a deposit credit brings one: refetch once after the burst.
const REFRESH_DELAY_MS = 300;

const panel = $("panel-wallet");
const root = $("wallet");
if (panel && root) mountWallet(panel, root);

function mountWallet(panel, root) {
  let started = false;
  let refreshTimer = 0;
  const balances = new Map(); // asset → its BalanceView

  const day = (at) => new Date(at).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });

  function showError(error, fallback = "Could not load your wallet.") {
    $("wlt-error").textContent = error ? error.message || fallback : "";
  }

  /** The line under the link buttons: "ok" (green), "error" (red) or "info" (a hint). */
  function note(text, tone = "ok") {
    $("wlt-link-note").textContent = text;
    $("wlt-link-note").dataset.tone = tone;
  }

  // --- Balances ----------------------------------------------------------------------------------

  const amount = (text, scale) => {
    const units = parse(text);
    return units == null ? String(text) : trim(units, Math.min(scale ?? 8, 18), 2);
  };

  function renderBalances() {
    const rows = [...balances.values()].map((b) => {
      const item = el("li", "wlt-row");
      item.dataset.asset = b.asset;
      item.append(el("span", "wlt-name", b.asset), el("span", "wlt-num", amount(b.total, b.scale)));
      if (parse(b.locked) > 0n) {
        item.append(el("span", "hint wlt-small wlt-sub", `${amount(b.available, b.scale)} available · ${amount(b.locked, b.scale)} in orders`));
      }
      return item;
    });
    if (!rows.length) rows.push(el("li", "hint wlt-small", "Nothing here yet."));
    $("wlt-balances").replaceChildren(...rows);
    withdrawals.balancesChanged();
  }

  async function loadBalances() {
    const list = await app.api("/api/balances");
    balances.clear();
    for (const view of Array.isArray(list) ? list : []) balances.set(view.asset, view);
    renderBalances();
  }

  // --- Linked wallets ----------------------------------------------------------------------------

  function renderWallets(list) {
    $("wlt-wallets").replaceChildren(...list.map((w) => {
      const item = el("li", "wlt-row wlt-wallet");
      item.dataset.id = w.id;
      const unlink = el("button", "wlt-unlink", "Unlink");
      unlink.type = "button";
      unlink.dataset.unlink = w.id;
      unlink.setAttribute("aria-label", `Unlink ${kindLabel(w.kind)} wallet ${w.address}`);
      const addr = el("code", "wlt-addr", shortAddress(w.address));
      addr.title = w.address;
      item.append(el("span", "wlt-tag", kindLabel(w.kind)), addr, unlink, el("span", "hint wlt-small wlt-sub", `Linked ${day(w.created_at)}`));
      return item;
    }));
    $("wlt-wallets-empty").hidden = list.length > 0;
    root.dataset.wallets = String(list.length);
  }

  async function loadWallets() {
    const list = await app.api("/api/wallets");
    renderWallets(Array.isArray(list) ? list : []);
  }

  function confirmed(text) {
    const tg = telegram();
    if (inTelegram() && tg?.isVersionAtLeast?.("6.2") && tg.showConfirm) {
      return new Promise((resolve) => tg.showConfirm(text, resolve));
    }
    return Promise.resolve(window.confirm(text));
  }

  $("wlt-wallets").addEventListener("click", async (event) => {
    const button = event.target.closest("[data-unlink]");
    if (!button) return;
    const label = button.getAttribute("aria-label").replace(/^Unlink /, "");
    if (!(await confirmed(`Unlink ${label}? You can link it again later.`))) return;
    button.disabled = true;
    try {
      await app.api(`/api/wallets/${encodeURIComponent(button.dataset.unlink)}`, { method: "DELETE" });
      note("Wallet unlinked.");
      haptic("success");
    } catch (error) {
      note(error.message || "Could not unlink the wallet.", "error");
      haptic("error");
    }
    await loadWallets().catch(showError);
  });

  async function link(button, flow) {
    button.disabled = true;
    note("Waiting for your wallet…", "info");
    try {
      const wallet = await flow();
      note(`Linked ${kindLabel(wallet.kind)} wallet ${shortAddress(wallet.address)}.`);
      haptic("success");
      await loadWallets();
    } catch (error) {
      if (declined(error)) note("Cancelled.", "info");
      else note(error.message || "Could not link the wallet.", "error");
      if (!declined(error)) haptic("error");
    } finally {
      button.disabled = false;
    }
  }

  $("wlt-connect-evm").addEventListener("click", (event) => {
    if (!hasProvider()) return note(NO_PROVIDER, "info");
    link(event.currentTarget, linkEvm);
  });
  $("wlt-connect-ton").addEventListener("click", (event) => link(event.currentTarget, () => linkTon(root)));

  // --- Loading and live updates ------------------------------------------------------------------

  const withdrawals = mountWithdrawals({
    available: (asset) => balances.get(asset)?.available ?? null,
    confirm: confirmed,
  });

  async function refresh() {
    const loads = [
      loadBalances(), loadWallets(), loadChains(), loadHistory(),
      withdrawals.loadChains(), withdrawals.loadHistory(),
    ];
    const failed = (await Promise.allSettled(loads)).find((r) => r.status === "rejected");
    showError(failed?.reason);
    root.dataset.state = failed ? "failed" : "ready";
  }

  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => Promise.allSettled([loadBalances(), loadHistory()]), REFRESH_DELAY_MS);
  }

  function listen() {
    app.hub?.subscribe(`user:${app.user().id}`, {
      frame(frame) {
        const data = frame.data;
        if (data?.type === "withdrawal") return withdrawals.onEvent(data);
        if (data?.type !== "balance" || !data.asset) return;
        balances.set(data.asset, { ...balances.get(data.asset), ...data });
        renderBalances();
        refreshSoon(); // a credited deposit moves a balance: its history row changes too
      },
      resynced() {
        refreshSoon();
        withdrawals.loadHistory().catch(() => {}); // events may have been missed
      },
    });
  }

  wireDeposits();

  function start() {
    if (started || panel.hidden || document.body.dataset.auth !== "ready") return;
    started = true;
    root.dataset.state = "loading";
    refresh();
    listen();
  }

  document.body.addEventListener("simplrefq:signed-in", start);
  new MutationObserver(start).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  start();
}
