// Settings › Price alerts: the form (with the market's price live from the `prices` topic),
// the active alerts with Delete, and the recently fired ones.
import { app } from "../app.js?v=533bbedc808c";
import { $, el, haptic } from "../lib/dom.js?v=7b1b01db74f5";

const FIRED_SHOWN = 5;
const prices = {}; // symbol → last price string from the `prices` topic

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

export async function refreshAlerts() {
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
export function listenAlerts() {
  app.hub?.subscribe(`user:${app.user().id}`, { frame: onFrame, resynced: () => refreshAlerts() });
  app.hub?.subscribe("prices", { frame: onFrame });
}

export function wireAlerts() {
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
}
