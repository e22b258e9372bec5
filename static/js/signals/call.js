// The current call and the patterns on its candle. A call is shown as one only when the model
// is published (it beat its best baseline out of sample); otherwise the badge says "No edge
// found", the model's lean is shown muted and labelled as not advice, and the reason's numbers
// say why. Text goes in with textContent only.
import { $, el } from "../lib/dom.js?v=7b1b01db74f5";
import { when } from "../lib/time.js?v=ac20f7f0ed91";
import { horizonText, intervalSeconds, leanOf, patternName, percent, reasonParts } from "./format.js?v=630e7193a70d";

const ARROWS = { up: "\u25B2", down: "\u25BC" };

/** The call block for `signal`. */
export function renderCall(signal) {
  const call = $("sig-call");
  const published = signal.published === true;
  const { direction, probability } = leanOf(signal);
  const horizon = horizonText(signal);
  const verb = direction === "up" ? "rise" : "fall";
  call.dataset.published = String(published);
  call.dataset.direction = direction;
  call.dataset.time = String(signal.time);

  const badge = $("sig-badge");
  const headline = $("sig-headline");
  if (published) {
    badge.textContent = "Edge found";
    headline.replaceChildren(
      el("span", `sig-dir is-${direction}`, `${ARROWS[direction]} ${direction.toUpperCase()} ${percent(probability, 0)}`),
      el("span", "sig-sub", `chance of a ${verb} over the next ${horizon}`),
    );
  } else {
    badge.textContent = "No edge found";
    headline.replaceChildren(
      el("span", "sig-lean", `Model leans ${direction} ${percent(probability, 0)} over the next ${horizon}`),
      el("span", "sig-sub", "Not published as advice: the model did not beat its best baseline out of sample."),
    );
  }
  $("sig-reason").replaceChildren(...reasonParts(signal.reason).map((part) => el("li", "", part)));

  const seconds = intervalSeconds(signal.interval) ?? 0;
  const meta = [
    signal.market,
    Number.isFinite(signal.time) ? `as of the ${when(signal.time + seconds)} close` : null,
    signal.model_version != null ? `model v${signal.model_version}` : null,
  ];
  $("sig-meta").textContent = meta.filter(Boolean).join(" · ");
  $("sig-simulated").hidden = signal.source !== "simulator";
}

/** The patterns the scored candle shows, each with its out-of-sample hit rate. */
export function renderPatterns(signal) {
  const patterns = Array.isArray(signal.patterns) ? signal.patterns : [];
  $("sig-patterns").replaceChildren(...patterns.map((p) => {
    const bullish = Number(p.signal) > 0;
    const item = el("li", "sig-row");
    const seen = Number.isFinite(p.occurrences) ? ` (${p.occurrences}\u00D7)` : "";
    const rate = typeof p.hit_rate === "number"
      ? el("span", "sig-num", `${percent(p.hit_rate, 0)} hit rate${seen}`)
      : el("span", "sig-num hint", `not enough history${seen}`);
    item.append(
      el("span", "sig-grow", patternName(p.name)),
      el("span", `sig-tag ${bullish ? "is-up" : "is-down"}`, bullish ? "bullish" : "bearish"),
      rate,
    );
    return item;
  }));
  $("sig-patterns-empty").hidden = patterns.length > 0;
}
