// htmx's ws-connect on the page's one hub socket. htmx-ext-ws opens its sockets through
// htmx.createWebSocket(url); for the hub's fragment endpoint (/ws/html?topics=...) it gets a
// stand-in: subscribed through the hub with `html`, handed the server-rendered fragments, never
// closed by a drop (the shared socket reconnects underneath it). Any other URL is a real socket.

/** A WebSocket look-alike fed by `subscribe(topic, {html})` for each topic the URL names. */
function htmlSocket(url, subscribe) {
  const names = (url.searchParams.get("topics") || "").split(",").filter(Boolean);
  const listeners = {};
  const fake = {
    CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3,
    readyState: 0, binaryType: "blob", url: url.href,
    onopen: null, onclose: null, onerror: null, onmessage: null,
    addEventListener(type, handler) { (listeners[type] ||= new Set()).add(handler); },
    removeEventListener(type, handler) { listeners[type]?.delete(handler); },
    send() {}, // the ticker only listens
    close() {
      if (fake.readyState === 3) return;
      fake.readyState = 3;
      for (const off of offs) off();
    },
  };
  const emit = (type, event) => {
    fake[`on${type}`]?.(event);
    for (const handler of listeners[type] ?? []) handler(event);
  };
  const offs = names.map((name) =>
    subscribe(name, { html: (fragment) => { if (fake.readyState === 1) emit("message", { type: "message", data: fragment }); } }),
  );
  queueMicrotask(() => {
    if (fake.readyState !== 0) return;
    fake.readyState = 1;
    emit("open", { type: "open" });
  });
  return fake;
}

/** Routes htmx's sockets for /ws/html to `subscribe`. htmx is a classic script that ran before us. */
export function routeHtmxSockets(subscribe) {
  const htmx = window.htmx;
  if (!htmx) return;
  const create = htmx.createWebSocket;
  htmx.createWebSocket = (address) => {
    const url = new URL(address, location.href);
    if (url.host === location.host && url.pathname === "/ws/html") return htmlSocket(url, subscribe);
    return create ? create(address) : new WebSocket(address);
  };
}
