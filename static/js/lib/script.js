// Vendored libraries that outweigh the page (static/vendor) load on first use: a classic
// <script> that defines a global, injected once per URL.

const loading = new Map(); // url → the promise of its global

/** Resolves with window[name] once the script at `url` ran (at once if it already did). */
export function loadScript(url, name) {
  if (window[name]) return Promise.resolve(window[name]);
  if (!loading.has(url)) {
    loading.set(url, new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.addEventListener("load", () => (window[name] ? resolve(window[name]) : reject(new Error(`${name} did not load`))));
      script.addEventListener("error", () => {
        loading.delete(url); // tried again on the next use
        reject(new Error(`${name} did not load`));
      });
      document.head.append(script);
    }));
  }
  return loading.get(url);
}
