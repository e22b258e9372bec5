// Settings › Notifications: a switch per topic (and its digest), quiet hours, time zone and
// language. Each change is saved at once with a PATCH carrying only what changed.
import { app } from "../app.js?v=533bbedc808c";
import { $, el, haptic } from "../lib/dom.js?v=7b1b01db74f5";

const TOPICS = {
  trades: "Order fills",
  points: "Points",
  referrals: "New referrals",
  alerts: "Price alerts",
  signals: "AI signals",
  wallet: "Deposits and withdrawals",
};
// Long enough to read, short enough not to linger over the next change.
const NOTE_MS = 1500;
// A time input reports every field typed (hours, then minutes): save once the typing stops.
const TIME_SAVE_DELAY_MS = 600;
const DEFAULT_QUIET = { start: "22:00", end: "07:00" };
const deviceZone = (() => {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch { return null; }
})();

let saved = null; // the settings as the server last answered
let queue = Promise.resolve(); // PATCHes go one at a time, in the order they were made
let pending = 0;
let noteTimer = 0;
let timeTimer = 0;

function note(text) {
  $("set-notify-note").textContent = text;
  clearTimeout(noteTimer);
  if (text) noteTimer = setTimeout(() => { $("set-notify-note").textContent = ""; }, NOTE_MS);
}

export function notifyError(error) {
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

export function buildZones() {
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

function saveZone(zone) {
  const name = zone.trim();
  if (!name || name === saved?.time_zone) {
    if (saved) $("set-tz").value = saved.time_zone;
    return;
  }
  save({ time_zone: name });
}

export async function loadSettings() {
  saved = await app.api("/api/notifications/settings");
  render(saved);
}

export function wireNotifications() {
  $("set-quiet").addEventListener("change", () => {
    const on = $("set-quiet").checked;
    $("set-quiet-start").disabled = $("set-quiet-end").disabled = !on;
    if (!on) return save({ quiet_hours: null });
    const start = $("set-quiet-start").value || DEFAULT_QUIET.start;
    const end = $("set-quiet-end").value || DEFAULT_QUIET.end;
    return save({ quiet_hours: { start, end } });
  });
  $("set-quiet-start").addEventListener("change", saveTimes);
  $("set-quiet-end").addEventListener("change", saveTimes);
  $("set-tz").addEventListener("change", () => saveZone($("set-tz").value));
  $("set-tz").addEventListener("keydown", (event) => {
    if (event.key === "Enter") $("set-tz").blur(); // blur fires `change`
  });
  $("set-tz-device").addEventListener("click", () => {
    if (deviceZone) saveZone(deviceZone);
  });
  $("set-language").addEventListener("change", () => save({ language: $("set-language").value || null }));
}
