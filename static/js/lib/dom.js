// Small DOM and Telegram helpers every page script shares. Text goes in with textContent only:
// names and prices come from users and the server, never as HTML.

/** Telegram's WebApp object, or null in a plain browser (telegram-web-app.js did not load). */
export const telegram = () => window.Telegram?.WebApp ?? null;

/** Inside a real Telegram client: outside one the script still loads but says platform "unknown". */
export const inTelegram = () => {
  const tg = telegram();
  return Boolean(tg && tg.platform !== "unknown");
};

export const $ = (id) => document.getElementById(id);

/** A new element with an optional class and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = String(text);
  return node;
}

/** A buzz where the client has haptics (6.1+): "select" for a choice, else a notification kind. */
export function haptic(kind) {
  const tg = telegram();
  if (!tg?.isVersionAtLeast?.("6.1")) return;
  if (kind === "select") tg.HapticFeedback?.selectionChanged?.();
  else tg.HapticFeedback?.notificationOccurred?.(kind);
}

/** Marks the button of `group` whose `attribute` equals `value` as pressed, the others not. */
export function setPressed(group, attribute, value) {
  for (const button of group.querySelectorAll(`[${attribute}]`)) {
    button.setAttribute("aria-pressed", String(button.getAttribute(attribute) === value));
  }
}
