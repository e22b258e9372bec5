// Versions the imports between the page's ES modules, as backend/web/assets.py versions the
// URLs the templates name. Static files are cached for a year, and the manifest fingerprints
// only the URLs it writes into the page (`/static/js/trade.js?v=<hash>`): a plain relative
// import (`./lib/decimal.js`) would be fetched without a version and could stay stale for that
// year. So every relative import carries the content hash of the file it names
// (`./lib/decimal.js?v=<sha256[:12]>`, the manifest's own hash), and since that hash is part of
// the importer's bytes, a change anywhere below a module changes the module's own hash too, up
// to the entry the page names. The same hash also makes `import { app } from "./app.js?v=…"`
// the very URL the page's <script> tag loads, so app.js and hub.js run once per page.
//
//   node tests/js/stamp.mjs          rewrite the stamps after editing static/js (leaves first)
//   node tests/js/stamp.mjs --check  exit 1 and name the stale ones (tests/js/modules.test.mjs)

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const STATIC = join(ROOT, "static");
export const JS = join(STATIC, "js");

// `import … from "./x.js"`, `export … from "./x.js"` and `import "./x.js"`, at the start of a
// line (so not in a comment); the specifier is relative, with or without a ?v= stamp.
const IMPORT = /^(?:(?:import|export)\b[^;"]*?\bfrom\s*|import\s*)"(\.{1,2}\/[^"?]+)(?:\?v=([^"]*))?"/gm;

/** The manifest's version of a file: the first 12 hex digits of its SHA-256 (web/assets.py). */
export const versionOf = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 12);

export function modules(folder = JS) {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return modules(path);
    return entry.name.endsWith(".js") ? [path] : [];
  });
}

/** The relative imports of a module: [{path (absolute), version (or undefined), start, end}]. */
export function importsOf(file, source = readFileSync(file, "utf8")) {
  return [...source.matchAll(IMPORT)].map((match) => {
    const start = match.index + match[0].indexOf('"') + 1;
    return { path: resolve(dirname(file), match[1]), specifier: match[1], version: match[2], start, end: match.index + match[0].length - 1 };
  });
}

/** Stamps `file` after the files it imports; returns the files it rewrote. */
function stamp(file, done = new Map(), trail = []) {
  if (done.has(file)) return [];
  if (trail.includes(file)) {
    throw new Error(`import cycle: ${[...trail, file].map((f) => relative(ROOT, f)).join(" → ")} (a hash cannot name itself)`);
  }
  const written = [];
  let source = readFileSync(file, "utf8");
  for (const item of importsOf(file, source)) written.push(...stamp(item.path, done, [...trail, file]));
  // Right to left, so the offsets of the earlier imports still hold.
  for (const item of importsOf(file, source).reverse()) {
    const version = versionOf(readFileSync(item.path));
    source = `${source.slice(0, item.start)}${item.specifier}?v=${version}${source.slice(item.end)}`;
  }
  if (source !== readFileSync(file, "utf8")) {
    writeFileSync(file, source);
    written.push(file);
  }
  done.set(file, true);
  return written;
}

/** Every import whose stamp is missing or is not the current hash of the file it names. */
export function staleImports() {
  const stale = [];
  for (const file of modules()) {
    for (const item of importsOf(file)) {
      let version;
      try {
        version = versionOf(readFileSync(item.path));
      } catch {
        stale.push(`${relative(ROOT, file)}: ${item.specifier} does not exist`);
        continue;
      }
      if (item.version !== version) {
        stale.push(`${relative(ROOT, file)}: ${item.specifier}?v=${item.version ?? ""} should be ?v=${version}`);
      }
    }
  }
  return stale;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--check")) {
    const stale = staleImports();
    for (const line of stale) console.error(line);
    process.exitCode = stale.length ? 1 : 0;
  } else {
    const done = new Map();
    const written = modules().flatMap((file) => stamp(file, done));
    for (const file of written) console.log(`stamped ${relative(ROOT, file)}`);
    if (!written.length) console.log("every import is stamped already");
  }
}
