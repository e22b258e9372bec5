// SimplRefQ mini-app: Telegram integration, sign-in and tab switching. An ES module with no
// build step; the tabs' scripts import `app` from here (classic scripts and tests read
// window.SimplRefQ). It must also run in a normal browser where telegram-web-app.js did not
// load, so every Telegram call is guarded.
import { $, haptic, inTelegram, telegram } from "./lib/dom.js?v=7b1b01db74f5";
import { hub } from "./hub.js?v=80861ee7a048";

function createApp() {
  const tg = telegram();
  const root = document.documentElement;
  const body = document.body;

  // The session token lives in memory only: never in localStorage, where any script
  // on the origin could read it after the page is gone.
  let token = null;
  let user = null;

  class ApiError extends Error {
    constructor(status, data) {
      const detail = typeof data?.detail === "string" ? data.detail : `Request failed (HTTP ${status})`;
      super(detail);
      this.name = "ApiError";
      this.status = status;
      this.data = data;
    }
  }

  // fetch() with the bearer token, JSON request bodies and JSON answers. Resolves with
  // the parsed body (null when there is none); rejects with ApiError when not 2xx.
  async function api(path, options = {}) {
    const headers = new Headers(options.headers);
    headers.set("Accept", "application/json");
    if (token) headers.set("Authorization", `Bearer ${token}`);
    let payload = options.body;
    const isPlainData =
      payload != null &&
      typeof payload === "object" &&
      !(payload instanceof FormData) &&
      !(payload instanceof Blob) &&
      !(payload instanceof URLSearchParams);
    if (isPlainData) {
      payload = JSON.stringify(payload);
      headers.set("Content-Type", "application/json");
    }
    const response = await fetch(path, { credentials: "same-origin", ...options, headers, body: payload });
    const type = response.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await response.json().catch(() => null) : null;
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  const app = Object.freeze({
    token: () => token,
    user: () => user,
    api,
    // The page's one live-hub socket (static/js/hub.js): every tab subscribes through it.
    hub,
    showView: (name, options) => chooseTab(name, options),
  });
  window.SimplRefQ = app;

  // The hub's socket signs in with the same token, sent in its first frame (never in a URL).
  hub.configure({ token: () => token });

  // htmx requests carry the same token as api() calls.
  document.addEventListener("htmx:configRequest", (event) => {
    if (token) event.detail.headers.Authorization = `Bearer ${token}`;
  });

  // --- Telegram -------------------------------------------------------------

  // Outside a Telegram client the script still loads but reports platform "unknown"
  // and a made-up light scheme, so the theme is taken only from a real client.
  const inTelegramClient = inTelegram();

  function applyTheme() {
    if (inTelegramClient && tg.colorScheme) root.dataset.theme = tg.colorScheme;
  }

  if (tg) {
    tg.ready?.();
    tg.expand?.();
    applyTheme();
    tg.onEvent?.("themeChanged", applyTheme);
  }

  // --- Sign-in --------------------------------------------------------------

  function startParam() {
    const query = new URLSearchParams(window.location.search);
    return query.get("startapp") || query.get("tgWebAppStartParam") || tg?.initDataUnsafe?.start_param || null;
  }

  function setStatus(text, isError = false) {
    const status = $("auth-status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function signedIn(data) {
    user = data.user;
    if (data.token) token = data.token;
    const chip = $("user-chip");
    if (chip) {
      chip.textContent = user.first_name || user.username || "Signed in";
      chip.classList.remove("hidden");
    }
    setStatus("");
    body.dataset.auth = "ready";
    body.dispatchEvent(new CustomEvent("simplrefq:signed-in", { detail: { user } }));
  }

  async function demoSignIn(start) {
    try {
      return await api("/api/me");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return api("/api/auth/demo", { method: "POST", body: { start_param: start } });
    }
  }

  async function signIn() {
    const initData = typeof tg?.initData === "string" ? tg.initData : "";
    const start = startParam();
    if (!initData && body.dataset.demo !== "1") {
      $("open-in-telegram")?.classList.remove("hidden");
      body.dataset.auth = "none";
      return;
    }
    body.dataset.auth = "pending";
    setStatus("Signing in…");
    try {
      const data = initData
        ? await api("/api/auth/telegram", { method: "POST", body: { init_data: initData, start_param: start } })
        : await demoSignIn(start);
      if (!data?.user) throw new Error("The server answered without a user.");
      signedIn(data);
    } catch (error) {
      token = null;
      user = null;
      const detail = error instanceof ApiError ? error.message : "Could not reach the server.";
      setStatus(detail, true);
      body.dataset.auth = "failed";
    }
  }

  // --- Tabs -----------------------------------------------------------------

  const tabs = Array.from(document.querySelectorAll('#tabbar [role="tab"][data-tab]'));
  // Views outside the tab bar (Settings, behind the header's gear) are panels like the tabs'.
  const views = Array.from(document.querySelectorAll(".panel[data-view]"), (panel) => panel.dataset.view);
  const tabNames = [...tabs.map((tab) => tab.dataset.tab), ...views];

  function selectTab(name, { focus = false } = {}) {
    const view = tabNames.includes(name) ? name : tabNames[0];
    if (!view) return;
    for (const other of tabNames) {
      const panel = $(`panel-${other}`);
      if (panel) panel.hidden = other !== view;
    }
    const current = tabs.find((tab) => tab.dataset.tab === view);
    for (const tab of tabs) {
      tab.setAttribute("aria-selected", String(tab === current));
      // On a view outside the bar, the bar keeps its keyboard stop on the last tab.
      if (current) tab.tabIndex = tab === current ? 0 : -1;
    }
    body.dataset.view = view;
    if (focus) (current ?? $(`panel-${view}`))?.focus();
  }

  function chooseTab(name, options) {
    if (!tabNames.includes(name)) return;
    if (body.dataset.view === name) {
      if (options?.focus) selectTab(name, options);
      return;
    }
    selectTab(name, options);
    // replaceState, not a new history entry: Back should leave the app, not walk the tabs.
    history.replaceState(history.state, "", `#${name}`);
    haptic("select");
  }

  function tabFromHash() {
    const name = window.location.hash.slice(1);
    return tabNames.includes(name) ? name : null;
  }

  $("tabbar")?.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"][data-tab]');
    if (tab) chooseTab(tab.dataset.tab);
  });

  // Arrow keys move between tabs, as the ARIA tabs pattern expects.
  $("tabbar")?.addEventListener("keydown", (event) => {
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    const moves = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: tabs.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = tabs[(moves[event.key] + tabs.length) % tabs.length];
    chooseTab(next.dataset.tab, { focus: true });
  });

  window.addEventListener("hashchange", () => {
    const name = tabFromHash();
    if (name) selectTab(name);
  });

  // Bot buttons open the app at ?tab=NAME; a #NAME hash (a tab chosen here) wins over it.
  // Inside Telegram the first hash holds tgWebAppData, not a tab name.
  const tabFromQuery = () => {
    const name = new URLSearchParams(window.location.search).get("tab");
    return tabNames.includes(name) ? name : null;
  };
  selectTab(tabFromHash() ?? tabFromQuery() ?? tabNames[0]);
  signIn();
  return app;
}

// One app per page: should this module ever run twice (imported under a second URL), the
// second run hands out the first one's object instead of signing in again.
export const app = window.SimplRefQ ?? createApp();
