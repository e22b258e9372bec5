// Points tab: balance, daily check-in, badges, referrals, leaderboard and history, kept live
// by the hub (/ws JSON protocol). Text goes in with textContent only: names come from users.
import { app } from "./app.js?v=533bbedc808c";
import { $, el, haptic, inTelegram, telegram } from "./lib/dom.js?v=7b1b01db74f5";

const panel = $("panel-points");
if (panel) mountPoints(panel);

function mountPoints(panel) {
  const tg = telegram();
  const BOARD_SIZE = 10;
  // One balance change sends a balance event, a points event and a leaderboard frame within
  // milliseconds: refetch once after the burst.
  const REFRESH_DELAY_MS = 300;
  const REASONS = {
    checkin: "Daily check-in", first_trade: "First trade", wallet_link: "Wallet linked",
    volume: "Trading volume", referral: "Referral reward", grant: "Bonus",
    clawback: "Clawback", expired: "Expired",
  };

  let started = false;
  let me = null; // the user's own leaderboard row
  let nextCursor = null;
  let referral = null;
  let refreshTimer = 0;

  const number = (n) => Number(n).toLocaleString("en-US");
  const day = (at) => new Date(at).toLocaleDateString(undefined, { day: "numeric", month: "short" });

  function row(parts, className = "") {
    const item = el("li", `pts-row ${className}`.trim());
    for (const part of parts) if (part) item.append(part);
    return item;
  }

  function showError(error) {
    $("pts-error").textContent = error ? error.message || "Could not load your points." : "";
  }

  // --- Rendering --------------------------------------------------------------

  function renderSummary(s) {
    $("pts-balance").textContent = number(s.balance);
    $("pts-rank").textContent = s.rank == null ? "–" : `#${number(s.rank)}`;
    $("pts-streak").textContent = `${s.streak} ${s.streak === 1 ? "day" : "days"}`;
    $("pts-days").textContent = number(s.checkin_days);
    const button = $("pts-checkin");
    button.disabled = s.checked_in_today;
    button.textContent = s.checked_in_today
      ? `Checked in today — next: +${number(s.next_checkin_points)} tomorrow`
      : `Check in · +${number(s.next_checkin_points)}`;
  }

  function renderBadges(b) {
    const list = $("pts-badge-list");
    list.replaceChildren();
    for (const badge of b.earned ?? []) {
      const img = el("img", "pts-badge");
      // Served by this app: load it from here, whatever public address the API names.
      img.src = new URL(badge.image_url, location.href).pathname;
      img.alt = img.title = `${badge.name} badge`;
      img.width = img.height = 48;
      list.append(img);
    }
    const next = b.next;
    $("pts-badge-next").textContent = next ? `${next.name} badge in ${number(next.points_needed)} points` : "Every badge earned!";
    $("pts-badges").hidden = false;
  }

  function renderReferrals(r) {
    referral = r;
    $("pts-ref-link").textContent = r.link || `Your code: ${r.code}`;
    $("pts-copy").disabled = false;
    $("pts-share").disabled = !r.link;
    $("pts-share").hidden = !r.link;
    $("pts-ref-totals").textContent =
      `${r.level1_count} invited · ${r.level2_count} by them · earned ${number(r.earned)} · pending ${number(r.pending)}`;
    $("pts-levels").replaceChildren(...r.levels.map((l) => row([
      el("span", "", `Level ${l.level} · ${l.share_bps / 100}%`),
      el("span", "pts-num", `${number(l.earned)} earned · ${number(l.pending)} pending`),
    ])));
    const referees = r.referees.map((f) => row([
      el("span", "pts-name", f.name || "Anonymous"),
      el("span", "hint pts-small", day(f.joined_at)),
      el("span", `pts-tag ${f.active ? "is-ok" : ""}`, f.active ? "active" : "pending"),
    ]));
    if (!referees.length) referees.push(el("li", "hint pts-small", "No friends yet: share your link."));
    $("pts-referees").replaceChildren(...referees);
  }

  function boardRow(entry) {
    const mine = me && entry.user_id === me.user_id;
    return row([
      el("span", "pts-rank", entry.rank == null ? "–" : `#${entry.rank}`),
      el("span", "pts-name", mine ? `${entry.name || "You"} (you)` : entry.name || "Anonymous"),
      el("span", "pts-num", number(entry.points)),
    ], mine ? "is-me" : "");
  }

  function renderBoard(top) {
    const shown = top.slice(0, BOARD_SIZE);
    const own = me && top.find((entry) => entry.user_id === me.user_id);
    if (own) me = { ...me, rank: own.rank, points: own.points };
    const rows = shown.map(boardRow);
    if (me && !shown.some((entry) => entry.user_id === me.user_id)) {
      if (shown.length) rows.push(el("li", "pts-gap", "…"));
      rows.push(me.rank == null ? el("li", "pts-row is-me hint", "Not ranked yet: check in to join.") : boardRow(me));
    }
    $("pts-board").replaceChildren(...rows);
  }

  function historyRows(entries) {
    return entries.map((e) => row([
      el("span", "pts-name", REASONS[e.reason] ?? e.reason),
      el("span", "hint pts-small", day(e.at)),
      e.status === "posted" ? null : el("span", "pts-tag", e.status),
      el("span", `pts-num ${e.amount < 0 ? "is-down" : "is-up"}`, `${e.amount > 0 ? "+" : ""}${number(e.amount)}`),
    ]));
  }

  // --- Loading ----------------------------------------------------------------

  async function loadSummary() { renderSummary(await app.api("/api/points")); }
  async function loadReferrals() { renderReferrals(await app.api("/api/referrals")); }

  async function loadBoard() {
    const board = await app.api(`/api/points/leaderboard?limit=${BOARD_SIZE}`);
    me = board.me;
    renderBoard(board.top);
  }

  async function loadBadges() {
    try {
      renderBadges(await app.api("/api/points/badges"));
    } catch (error) {
      if (error.status !== 404) throw error; // no badges on this server: show nothing
    }
  }

  async function loadHistory(more = false) {
    const query = more && nextCursor ? `&before=${encodeURIComponent(nextCursor)}` : "";
    const page = await app.api(`/api/points/history?limit=20${query}`);
    const rows = historyRows(page.entries);
    if (more) $("pts-history").append(...rows);
    else $("pts-history").replaceChildren(...(rows.length ? rows : [el("li", "hint pts-small", "Nothing yet: check in to earn your first points.")]));
    nextCursor = page.next;
    $("pts-more").hidden = !nextCursor;
  }

  async function refresh() {
    const loads = [loadSummary(), loadHistory(), loadReferrals(), loadBoard(), loadBadges()];
    const failed = (await Promise.allSettled(loads)).find((r) => r.status === "rejected");
    showError(failed?.reason);
    $("points").dataset.state = "ready";
  }

  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, REFRESH_DELAY_MS);
  }

  // --- Actions ----------------------------------------------------------------

  $("pts-checkin").addEventListener("click", async () => {
    const button = $("pts-checkin");
    button.disabled = true;
    try {
      const result = await app.api("/api/points/checkin", { method: "POST" });
      $("pts-balance").textContent = number(result.balance);
      $("pts-checkin-note").textContent = result.checked_in
        ? `+${number(result.points)} points · ${result.streak}-day streak`
        : "Already checked in today.";
      if (result.checked_in) haptic("success");
      await refresh();
    } catch (error) {
      button.disabled = false;
      showError(error);
      haptic("error");
    }
  });

  $("pts-more").addEventListener("click", () => loadHistory(true).catch(showError));

  $("pts-copy").addEventListener("click", async () => {
    const text = referral?.link || referral?.code;
    if (!text) return;
    try {
      await navigator.clipboard.writeText(text);
      $("pts-copy").textContent = "Copied";
    } catch {
      // No clipboard (an insecure context, or refused): select it for a long-press copy.
      getSelection().selectAllChildren($("pts-ref-link"));
      $("pts-copy").textContent = "Selected";
    }
    setTimeout(() => { $("pts-copy").textContent = "Copy"; }, 2000);
  });

  $("pts-share").addEventListener("click", () => {
    if (!referral?.link) return;
    if (inTelegram() && tg.openTelegramLink) tg.openTelegramLink(referral.share_url);
    else if (navigator.share) navigator.share({ url: referral.link }).catch(() => {});
    else window.open(referral.share_url, "_blank", "noopener");
  });

  // --- Live updates -------------------------------------------------------------

  // Through the page's one socket, which resumes after a drop: missed events are replayed, and
  // only a topic that had to start over (resynced) is fetched again.
  function listen() {
    app.hub?.subscribe(`user:${app.user().id}`, {
      frame(frame) {
        const kind = frame.data?.type;
        if (kind === "points" || kind === "referral_reward" || (kind === "balance" && frame.data.asset === "PTS")) refreshSoon();
      },
      resynced: refreshSoon,
    });
    app.hub?.subscribe("leaderboard", {
      frame(frame) { if (Array.isArray(frame.data?.top)) renderBoard(frame.data.top); },
    });
  }

  // --- Start: once signed in and the panel is first shown -----------------------

  function start() {
    if (started || panel.hidden || document.body.dataset.auth !== "ready") return;
    started = true;
    $("points").dataset.state = "loading";
    refresh();
    listen();
  }

  document.body.addEventListener("simplrefq:signed-in", start);
  new MutationObserver(start).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  start();
}
