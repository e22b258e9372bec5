// Settings view, behind the header's gear: opening and closing it (Telegram's Back button too),
// and its two parts, notification preferences and price alerts (static/js/settings/), kept live
// by the hub (/ws JSON protocol). Text goes in with textContent only.
import { app } from "./app.js?v=533bbedc808c";
import { $, telegram } from "./lib/dom.js?v=7b1b01db74f5";
import { listenAlerts, refreshAlerts, wireAlerts } from "./settings/alerts.js?v=44ba9208a62f";
import { buildZones, loadSettings, notifyError, wireNotifications } from "./settings/notifications.js?v=29b6a37f4570";

const panel = $("panel-settings");
if (panel) mountSettings(panel);

function mountSettings(panel) {
  const tg = telegram();
  let started = false;
  let returnTo = null; // the tab to go back to

  // --- Opening and closing ------------------------------------------------------

  const isOpen = () => !panel.hidden;
  const backButton = () => (tg?.isVersionAtLeast?.("6.1") ? tg.BackButton : null);

  function close() {
    const first = document.querySelector("#tabbar [data-tab]")?.dataset.tab;
    app.showView(returnTo || first);
  }

  $("open-settings").addEventListener("click", () => {
    if (isOpen()) return close();
    returnTo = document.querySelector('#tabbar [aria-selected="true"]')?.dataset.tab ?? returnTo;
    app.showView("settings");
  });
  $("settings-back").addEventListener("click", close);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.target.matches("select, input")) close();
  });
  backButton()?.onClick?.(() => { if (isOpen()) close(); });

  function shown() {
    const open = isOpen();
    $("open-settings").setAttribute("aria-expanded", String(open));
    if (open) backButton()?.show?.();
    else backButton()?.hide?.();
  }

  wireNotifications();
  wireAlerts();

  // --- Start: once signed in and the panel is first shown; alerts again on each showing -----

  async function start() {
    if (started || panel.hidden || document.body.dataset.auth !== "ready") return;
    started = true;
    $("settings").dataset.state = "loading";
    $("alert-submit").disabled = false;
    buildZones();
    listenAlerts();
    const loads = [loadSettings().catch((error) => { notifyError(error); }), refreshAlerts()];
    await Promise.all(loads);
    $("settings").dataset.state = "ready";
  }

  function onShow() {
    shown();
    if (started && isOpen()) refreshAlerts();
    else start();
  }

  document.body.addEventListener("simplrefq:signed-in", start);
  new MutationObserver(onShow).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  shown();
  start();
}
