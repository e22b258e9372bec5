// Settings view: notification preferences (each change saved at once with PATCH) and price
// alerts, kept live by the hub (/ws JSON protocol). Text goes in with textContent only.
(() => {
  "use strict";

  const app = window.SimplRefQ;
  const panel = document.getElementById("panel-settings");
  if (!app || !panel) return;
  const tg = window.Telegram?.WebApp ?? null;
  const $ = (id) => document.getElementById(id);
  const TOPICS = { trades: "Order fills", points: "Points", referrals: "New referrals", alerts: "Price alerts" };
  // Long enough to read, short enough not to linger over the next change.
  const NOTE_MS = 1500;
  // A time input reports every field typed (hours, then minutes): save once the typing stops.
  const TIME_SAVE_DELAY_MS = 600;
  const FIRED_SHOWN = 5;
  const DEFAULT_QUIET = { start: "22:00", end: "07:00" };
  const deviceZone = (() => {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch { return null; }
  })();

  let started = false;
  let saved = null; // the settings as the server last answered
  let queue = Promise.resolve(); // PATCHes go one at a time, in the order they were made
  let pending = 0;
  let noteTimer = 0;
  let timeTimer = 0;
  let returnTo = null; // the tab to go back to
  const prices = {}; // symbol → last price string from the `prices` topic

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function haptic(kind) {
    if (tg?.isVersionAtLeast?.("6.1")) tg.HapticFeedback?.notificationOccurred?.(kind);
  }

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

  // --- Notifications ------------------------------------------------------------

  function note(text) {
    $("set-notify-note").textContent = text;
    clearTimeout(noteTimer);
    if (text) noteTimer = setTimeout(() => { $("set-notify-note").textContent = ""; }, NOTE_MS);
  }

  function notifyError(error) {
    $("set-notify-error").textContent = error ? error.message || "Could not save." : "";
  }

  function switchRow(id, label, hint) {
    const row = el("div", "set-row");
    const text = el("label", "set-label");
    text.htmlFor = id;
    text.append(el("span", "", label));
    const input = el("input", "set-switch");
    input.type = "checkbox";
    input.id = id;
    input.setAttribute("role", "switch");
    if (hint != null) {
      const small = el("span", "hint set-small", hint);
      small.id = `${id}-hint`;
      text.append(small);
      input.setAttribute("aria-describedby", small.id);
    }
    row.append(text, input);
    return { row, input };
  }

  // The switches follow the topics the server names, so a new topic shows up by itself.
  function buildTopics(view) {
    const rows = [];
    for (const topic of Object.keys(view.topics)) {
      const label = TOPICS[topic] ?? topic;
      const { row, input } = switchRow(`set-topic-${topic}`, label);
      input.dataset.topic = topic;
      input.addEventListener("change", () => save({ topics: { [topic]: input.checked } }));
      rows.push(row);
      if (topic in view.digest) {
        const sub = switchRow(`set-digest-${topic}`, "Digest", "");
        sub.row.classList.add("set-sub");
        sub.input.dataset.digest = topic;
        sub.input.setAttribute("aria-label", `Digest for ${label}`);
        sub.input.addEventListener("change", () => save({ digest: { [topic]: sub.input.checked } }));
        rows.push(sub.row);
      }
    }
    $("set-topics").replaceChildren(...rows);
  }

  function buildLanguages(view) {
    // Each language named in itself ("русский"), as language pickers do.
    const names = (code) => {
      try { return new Intl.DisplayNames([code], { type: "language" }).of(code) || code; } catch { return code; }
    };
    const options = [el("option", "", "Same as Telegram")];
    options[0].value = "";
    for (const code of view.languages) {
      const option = el("option", "", names(code));
      option.value = code;
      options.push(option);
    }
    $("set-language").replaceChildren(...options);
  }

  function buildZones() {
    const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    $("set-tz-list").replaceChildren(...["UTC", ...zones].map((zone) => {
      const option = el("option");
      option.value = zone;
      return option;
    }));
  }

  function render(view) {
    if (!$("set-topics").childElementCount) buildTopics(view);
    if ($("set-language").options.length !== view.languages.length + 1) buildLanguages(view);
    for (const input of $("set-topics").querySelectorAll("[data-topic]")) {
      input.checked = Boolean(view.topics[input.dataset.topic]);
    }
    for (const input of $("set-topics").querySelectorAll("[data-digest]")) {
      input.checked = Boolean(view.digest[input.dataset.digest]);
      // A muted topic sends nothing to gather.
      input.disabled = !view.topics[input.dataset.digest];
      const hint = $(`${input.id}-hint`);
      hint.textContent = `Gather this topic's messages into one every ${view.digest_minutes} minutes`;
    }
    const quiet = view.quiet_hours;
    $("set-quiet").checked = Boolean(quiet);
    $("set-quiet").disabled = false;
    if (quiet) {
      $("set-quiet-start").value = quiet.start;
      $("set-quiet-end").value = quiet.end;
    }
    $("set-quiet-start").disabled = $("set-quiet-end").disabled = !quiet;
    $("set-quiet-hint").textContent = `Messages wait until quiet hours end. Times are in ${view.time_zone}.`;
    $("set-tz").value = view.time_zone;
    $("set-tz").disabled = false;
    // Offered, never applied on its own: the user may want UTC.
    const offer = view.time_zone === "UTC" && deviceZone && deviceZone !== "UTC" && deviceZone !== "Etc/UTC";
    $("set-tz-device").hidden = !offer;
    if (offer) $("set-tz-device").textContent = `Use ${deviceZone}`;
    $("set-language").value = view.language ?? "";
    $("set-language").disabled = false;
  }

  // One PATCH per change, carrying only what changed. On failure the controls go back to what
  // the server holds and its `detail` is shown.
  function save(change) {
    pending++;
    notifyError(null);
    queue = queue.then(async () => {
      try {
        saved = await app.api("/api/notifications/settings", { method: "PATCH", body: change });
        note("Saved");
      } catch (error) {
        note("");
        notifyError(error);
        haptic("error");
      } finally {
        pending--;
      }
      // Later changes still on their way keep what the user set; the last answer settles all.
      if (pending === 0 && saved) render(saved);
    });
    return queue;
  }

  $("set-quiet").addEventListener("change", () => {
    const on = $("set-quiet").checked;
    $("set-quiet-start").disabled = $("set-quiet-end").disabled = !on;
    if (!on) return save({ quiet_hours: null });
    const start = $("set-quiet-start").value || DEFAULT_QUIET.start;
    const end = $("set-quiet-end").value || DEFAULT_QUIET.end;
    return save({ quiet_hours: { start, end } });
  });

  function saveTimes() {
    clearTimeout(timeTimer);
    timeTimer = setTimeout(() => {
      const start = $("set-quiet-start").value;
      const end = $("set-quiet-end").value;
      if (!$("set-quiet").checked) return;
      if (!start || !end) {
        if (saved) render(saved); // a cleared field: keep the saved time
        return;
      }
      const current = saved?.quiet_hours;
      if (current && current.start === start && current.end === end) return;
      save({ quiet_hours: { start, end } });
    }, TIME_SAVE_DELAY_MS);
  }

  $("set-quiet-start").addEventListener("change", saveTimes);
  $("set-quiet-end").addEventListener("change", saveTimes);

  function saveZone(zone) {
    const name = zone.trim();
    if (!name || name === saved?.time_zone) {
      if (saved) $("set-tz").value = saved.time_zone;
      return;
    }
    save({ time_zone: name });
  }

  $("set-tz").addEventListener("change", () => saveZone($("set-tz").value));
  $("set-tz").addEventListener("keydown", (event) => {
    if (event.key === "Enter") $("set-tz").blur(); // blur fires `change`
  });
  $("set-tz-device").addEventListener("click", () => {
    if (deviceZone) saveZone(deviceZone);
  });

  $("set-language").addEventListener("change", () => save({ language: $("set-language").value || null }));

  async function loadSettings() {
    saved = await app.api("/api/notifications/settings");
    render(saved);
  }

  // --- Price alerts -------------------------------------------------------------

  const ARROWS = { above: "↑", below: "↓" };

  function alertError(error) {
    $("alert-error").textContent = error ? error.message || "Could not load your alerts." : "";
  }

  function directionMark(direction) {
    const mark = el("span", `alert-dir is-${direction}`);
    const arrow = el("span", "", ARROWS[direction] ?? "");
    arrow.setAttribute("aria-hidden", "true");
    mark.append(arrow, el("span", "set-sr", direction));
    return mark;
  }

  function activeRow(alert) {
    const item = el("li", "set-row alert-row");
    item.dataset.id = alert.id;
    const remove = el("button", "appbar-icon alert-delete");
    remove.type = "button";
    remove.setAttribute("aria-label", `Delete alert: ${alert.market} ${alert.direction} ${alert.price}`);
    remove.append(el("span", "", "×"));
    remove.firstChild.setAttribute("aria-hidden", "true");
    remove.addEventListener("click", () => cancel(alert, remove));
    item.append(
      el("span", "alert-market", alert.market), directionMark(alert.direction), el("span", "alert-price", alert.price), remove,
    );
    return item;
  }

  function firedRow(alert) {
    const item = el("li", "set-row alert-row is-fired");
    const when = alert.fired_at
      ? new Date(alert.fired_at).toLocaleString(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" })
      : "";
    item.append(
      el("span", "alert-market", alert.market), directionMark(alert.direction), el("span", "alert-price", alert.price),
      el("span", "alert-fired-at set-small", `fired at ${alert.fired_price ?? "–"}${when ? ` · ${when}` : ""}`),
    );
    return item;
  }

  async function loadAlerts() {
    const [active, fired] = await Promise.all([
      app.api("/api/alerts?status=active"),
      app.api(`/api/alerts?status=fired&limit=${FIRED_SHOWN}`),
    ]);
    $("alert-list").replaceChildren(...active.map(activeRow));
    $("alert-empty").hidden = active.length > 0;
    $("alert-fired").replaceChildren(...fired.map(firedRow));
    $("alert-fired-title").hidden = fired.length === 0;
  }

  async function refreshAlerts() {
    try {
      await loadAlerts();
      alertError(null);
    } catch (error) {
      alertError(error);
    }
  }

  async function cancel(alert, button) {
    button.disabled = true;
    alertError(null);
    try {
      await app.api(`/api/alerts/${alert.id}`, { method: "DELETE" }); // 204, or the cancelled view
      button.closest("li")?.remove();
      $("alert-empty").hidden = $("alert-list").childElementCount > 0;
    } catch (error) {
      // It may have fired meanwhile (409): show where it went, then say why.
      await loadAlerts().catch(() => {});
      alertError(error);
    }
  }

  function showPrice() {
    const symbol = $("alert-market").value;
    const price = prices[symbol];
    $("alert-current").textContent = price ? `${symbol} is at ${price} now` : "";
  }

  // The API takes plain decimals; phones in many locales type a comma.
  function readPrice() {
    const text = $("alert-price").value.trim().replace(",", ".");
    if (!text) return { error: "Enter a price." };
    if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text) || !(Number(text) > 0)) return { error: "Enter a price above 0." };
    return { price: text };
  }

  function priceError(text) {
    $("alert-price-error").textContent = text || "";
    $("alert-price").setAttribute("aria-invalid", String(Boolean(text)));
  }

  $("alert-market").addEventListener("change", showPrice);
  $("alert-price").addEventListener("input", () => priceError(""));

  $("alert-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    alertError(null);
    const { price, error } = readPrice();
    priceError(error);
    if (error) {
      $("alert-price").focus();
      return;
    }
    const button = $("alert-submit");
    button.disabled = true;
    try {
      await app.api("/api/alerts", { method: "POST", body: { market: $("alert-market").value, price } });
      $("alert-price").value = "";
      haptic("success");
      await refreshAlerts();
    } catch (error) {
      alertError(error);
      haptic("error");
    } finally {
      button.disabled = false;
    }
  });

  // --- Live updates: fired alerts on the user's topic, prices for the form -------------

  function onFrame(frame) {
    if (frame.topic === "prices") {
      for (const [symbol, quote] of Object.entries(frame.data?.markets ?? {})) {
        if (quote?.price != null) prices[symbol] = String(quote.price);
      }
      showPrice();
    } else if (frame.topic?.startsWith("user:") && frame.data?.type === "alert_fired") {
      refreshAlerts();
    }
  }

  // Through the page's one socket: after a drop it replays what was missed, so only a user topic
  // that had to start over (resynced) may hide a fired alert.
  function listen() {
    app.hub?.subscribe(`user:${app.user().id}`, { frame: onFrame, resynced: () => refreshAlerts() });
    app.hub?.subscribe("prices", { frame: onFrame });
  }

  // --- Start: once signed in and the panel is first shown; alerts again on each showing -----

  async function start() {
    if (started || panel.hidden || document.body.dataset.auth !== "ready") return;
    started = true;
    $("settings").dataset.state = "loading";
    $("alert-submit").disabled = false;
    buildZones();
    listen();
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
})();
