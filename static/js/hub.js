// The live hub client: ONE WebSocket (/ws JSON protocol, backend/hub/protocol.py) per page,
// shared by every tab and the header ticker. An ES module, no build step.
//
//   import { hub } from "./hub.js";          // or window.SimplRefQHub from a classic script
//   const off = hub.subscribe("prices", {
//     frame(frame) { ... },     // {topic, seq, type: snapshot|delta|event, data}, in seq order
//     resynced({ topic, seq }) { ... }, // the topic started over: refetch (a snapshot follows
//   });                                 // for state topics)
//   off(); // the last listener of a topic unsubscribes it
//
// It keeps each topic's last seq and the hub's epoch, and after a drop, a server restart or
// Telegram's "activated" it opens a fresh socket (back-off with jitter) and resumes every topic
// with `since` + `epoch`: the missed frames follow, or a snapshot where they cannot. Duplicates
// are dropped; a gap resubscribes that topic from its last seq. The header badge shows
// connecting / live / reconnecting / resynced. A listener with `html(fragment)` gets the
// server-rendered fragment of each frame: htmx's ws-connect="/ws/html?topics=..." (the header
// ticker) is served that way through a stand-in socket, not a second connection.
import { routeHtmxSockets } from "./hub/htmx-socket.js?v=b711e5a37e31";

function createHub() {
  // Reconnect after 0.5 s, doubling to 30 s, each delay jittered over its upper half: a
  // restarting server is not hammered by every page at the same instant.
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 30_000;
  // Back on screen, a socket that does not answer a ping this fast is presumed dead (a phone's
  // radio may have dropped it without a close); the server answers within milliseconds.
  const PING_TIMEOUT_MS = 5_000;
  // Seqs kept per topic for debug(): enough for a test, bounded for a page left open for days.
  const LOG_SIZE = 1_000;

  const body = document.body;
  const tg = window.Telegram?.WebApp ?? null;

  /** topic → {listeners: Set, html: number (htmx sockets), seq, answered, conn, pending, log, resyncs} */
  const topics = new Map();
  let token = () => null;
  let socket = null;
  let conn = 0; // which socket a topic's answer came on
  let opened = 0;
  let ready = false; // open, and the auth answer (if any) is in
  let authedWith = null;
  let epoch = null;
  let retries = 0;
  let retryTimer = 0;
  let flushQueued = false;
  let lastHeard = 0;
  let resyncedHere = false;
  let state = "connecting";
  const unsubscribed = new Set();

  const isPrivate = (topic) => topic.startsWith("user:");

  // --- Badge ---------------------------------------------------------------------------------

  function setState(next) {
    if (next === state) return;
    state = next;
    const badge = document.getElementById("live-status");
    if (badge) {
      badge.dataset.state = next;
      badge.textContent = next;
    }
    body.dispatchEvent(new CustomEvent("simplrefq:live", { detail: { state: next } }));
  }

  function updateState() {
    if (!ready) return;
    for (const entry of topics.values()) if (entry.conn !== conn) return; // still answering
    setState(resyncedHere ? "resynced" : "live");
  }

  // --- Socket ----------------------------------------------------------------------------------

  function send(operation) {
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(operation));
  }

  // Sign-in decides whose socket this is: while it is under way, wait rather than open an
  // anonymous socket that has to be replaced a moment later.
  const signingIn = () => body.dataset.auth === "pending";

  function open() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (socket || !topics.size || signingIn()) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // No token in the URL (it would land in logs): the session cookie signs the socket in,
    // and a token held in memory goes in the first frame.
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    socket = ws;
    conn += 1;
    opened += 1;
    ready = false;
    resyncedHere = false;
    authedWith = token();
    for (const entry of topics.values()) entry.pending = true;
    ws.addEventListener("open", () => {
      if (socket !== ws) return;
      if (authedWith) send({ op: "auth", token: authedWith });
      else subscribeAll();
    });
    ws.addEventListener("message", (event) => {
      if (socket !== ws) return;
      lastHeard = Date.now();
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame && typeof frame === "object") onFrame(frame);
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      socket = null;
      ready = false;
      if (!topics.size) return; // nothing wanted: no socket until something is
      setState("reconnecting");
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** retries++);
      retryTimer = setTimeout(open, delay * (0.5 + Math.random() / 2));
    });
  }

  /** A fresh socket now (back from the background, back online, or signed in anew). */
  function reconnect() {
    const old = socket;
    socket = null;
    old?.close();
    retries = 0;
    if (topics.size) setState("reconnecting");
    open();
  }

  function subscribeAll() {
    ready = true;
    for (const entry of topics.values()) entry.pending = true;
    unsubscribed.clear();
    sendSubscribe([...topics.keys()]);
  }

  /** One subscribe operation; topics with a seq resume from it unless `fresh`. */
  function sendSubscribe(names, { fresh = false } = {}) {
    if (!names.length) return;
    const since = {};
    for (const name of names) {
      const entry = topics.get(name);
      entry.pending = true;
      entry.htmlSent = entry.html > 0;
      if (entry.seq != null && !fresh) since[name] = entry.seq;
    }
    const operation = { op: "subscribe", topics: names };
    if (Object.keys(since).length) Object.assign(operation, { since, epoch });
    const html = names.filter((name) => topics.get(name).htmlSent);
    if (html.length) operation.html = html;
    send(operation);
  }

  /** Start a topic over from its snapshot, for a listener that joined it late (not a loss). */
  function refresh(name, entry) {
    entry.fresh = true;
    entry.refreshAfter = false;
    send({ op: "unsubscribe", topics: [name] });
    sendSubscribe([name], { fresh: true });
  }

  // A listener joining a topic that is already streaming needs its current state: a state
  // topic's snapshot, or the fragment htmx has not asked for yet.
  function join(name, entry, html) {
    const late = entry.answered
      ? entry.state || (html && !entry.htmlSent)
      : html && entry.pending && !entry.htmlSent;
    if (!late) return;
    if (ready && !entry.pending && entry.conn === conn) refresh(name, entry);
    else entry.refreshAfter = true; // once its answer is in
  }

  // Subscriptions made in one go (a tab opening) leave as one operation.
  function flushSoon() {
    if (flushQueued) return;
    flushQueued = true;
    queueMicrotask(() => {
      flushQueued = false;
      if (!socket) return open();
      if (!ready) return; // subscribeAll() sends everything once the socket is signed in
      if (unsubscribed.size) send({ op: "unsubscribe", topics: [...unsubscribed] });
      unsubscribed.clear();
      sendSubscribe([...topics].filter(([, entry]) => entry.conn !== conn && !entry.pending).map(([name]) => name));
    });
  }

  // --- Frames ----------------------------------------------------------------------------------

  function onFrame(frame) {
    if (frame.op === "subscribed") return onSubscribed(frame);
    if (frame.op === "html") return onHtml(frame);
    if (frame.op === "authed" || (frame.op === "error" && !ready)) {
      // The answer to the auth frame; an error (a server without the auth op) still leaves
      // the session cookie, and private topics the socket may not read are refused one by one.
      if (!ready) subscribeAll();
      return;
    }
    if (frame.op) return; // pong, errors: nothing to do here
    const entry = topics.get(frame.topic);
    if (!entry || entry.pending || !Number.isInteger(frame.seq)) return;
    if (frame.type !== "snapshot" && entry.seq != null) {
      if (frame.seq <= entry.seq) return; // sent again: seen already
      if (frame.seq > entry.seq + 1) return recover(frame.topic, entry); // some went missing
    }
    if (frame.type === "snapshot") entry.state = true;
    // A snapshot carries the seq of its "subscribed", already logged as the start.
    else log(entry, frame.seq);
    entry.seq = frame.seq;
    for (const listener of [...entry.listeners]) call(listener.frame, frame);
  }

  function onSubscribed(frame) {
    const entry = topics.get(frame.topic);
    if (!entry) return;
    if (frame.epoch) epoch = frame.epoch;
    // A topic answered before that starts over (another epoch, history gone, or the server
    // resynced a slow page) lost frames: its listeners fetch again or take the snapshot.
    const resynced = entry.answered && !frame.recovered && !entry.fresh;
    entry.answered = true;
    entry.fresh = false;
    entry.pending = false;
    entry.conn = conn;
    // Recovered: the missed frames follow, from our `since` on (frame.seq is the last of them).
    if (!frame.recovered) {
      entry.seq = frame.seq;
      entry.htmlSeq = null;
      log(entry, `s${frame.seq}`); // starts (over) here: the next frame is seq + 1
    }
    retries = 0;
    if (entry.refreshAfter) {
      entry.refreshAfter = false;
      if (frame.recovered || (entry.html > 0 && !entry.htmlSent)) refresh(frame.topic, entry);
    }
    if (resynced) {
      entry.resyncs += 1;
      resyncedHere = true;
      setState("resynced");
      for (const listener of [...entry.listeners]) call(listener.resynced, { topic: frame.topic, seq: frame.seq });
    }
    updateState();
  }

  function onHtml(frame) {
    const entry = topics.get(frame.topic);
    // The fragment follows its frame: only that of the frame just taken, and only once.
    if (!entry || entry.pending || frame.seq !== entry.seq || frame.seq === entry.htmlSeq) return;
    entry.htmlSeq = frame.seq;
    for (const listener of [...entry.listeners]) call(listener.html, frame.html);
  }

  /** A gap: resume this topic from its last seq (the server sends the rest, or a snapshot). */
  function recover(name, entry) {
    entry.pending = true;
    send({ op: "unsubscribe", topics: [name] });
    sendSubscribe([name]);
  }

  function log(entry, item) {
    entry.log.push(item);
    if (entry.log.length > LOG_SIZE) entry.log.splice(0, entry.log.length - LOG_SIZE);
  }

  function call(handler, argument) {
    if (typeof handler !== "function") return;
    try {
      handler(argument);
    } catch (error) {
      console.error(error); // one tab's bug must not stop the others' updates
    }
  }

  // --- Subscriptions -----------------------------------------------------------------------------

  function subscribe(topic, listener = {}) {
    let entry = topics.get(topic);
    if (!entry) {
      entry = {
        listeners: new Set(), html: 0, seq: null, htmlSeq: null, answered: false, fresh: false,
        conn: 0, pending: false, log: [], resyncs: 0, state: false, htmlSent: false, refreshAfter: false,
      };
      // Still in `unsubscribed` if dropped this very tick: the flush unsubscribes, then
      // subscribes afresh, so the server answers it again.
      topics.set(topic, entry);
    }
    const own = { ...listener };
    entry.listeners.add(own);
    if (listener.html) entry.html += 1;
    join(topic, entry, Boolean(listener.html));
    // A private topic needs the signed-in socket: one opened before the token came is replaced.
    if (isPrivate(topic) && socket && token() && token() !== authedWith) reconnect();
    else flushSoon();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      entry.listeners.delete(own);
      if (listener.html) entry.html -= 1;
      if (entry.listeners.size || topics.get(topic) !== entry) return;
      topics.delete(topic);
      unsubscribed.add(topic);
      flushSoon();
    };
  }

  // The header ticker's ws-connect rides this socket too (static/js/hub/htmx-socket.js).
  routeHtmxSockets(subscribe);

  // --- Coming back -------------------------------------------------------------------------------

  // Back from the background a phone's socket may be silently dead: start a fresh one now.
  tg?.onEvent?.("activated", () => { if (topics.size) reconnect(); });
  window.addEventListener("online", () => { if (!socket && topics.size) reconnect(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || !topics.size) return;
    if (!socket) return reconnect();
    const asked = Date.now();
    send({ op: "ping" });
    setTimeout(() => { if (socket && lastHeard < asked) reconnect(); }, PING_TIMEOUT_MS);
  });
  // Once sign-in settles, the socket that waited for it opens.
  new MutationObserver(() => { if (!socket && !retryTimer && !signingIn()) open(); })
    .observe(body, { attributes: true, attributeFilter: ["data-auth"] });

  return Object.freeze({
    subscribe,
    reconnect,
    state: () => state,
    /** app.js hands over its in-memory token (a getter: it changes on sign-in). */
    configure({ token: getter }) { if (typeof getter === "function") token = getter; },
    /** What tests (and a curious developer) need to see; reads only. */
    debug: () => ({
      state,
      opened,
      open: socket?.readyState === WebSocket.OPEN,
      epoch,
      topics: Object.fromEntries([...topics].map(([name, entry]) => [name, {
        seq: entry.seq, pending: entry.pending, listeners: entry.listeners.size, resyncs: entry.resyncs,
        log: [...entry.log],
      }])),
    }),
  });
}

// One client, so one socket, per page: should this module ever run twice (imported under a
// second URL), the second run hands out the first one's client. Classic scripts and tests
// reach it as window.SimplRefQHub.
export const hub = window.SimplRefQHub ?? createHub();
window.SimplRefQHub = hub;
