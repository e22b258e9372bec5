// The page's ES modules as a whole (static/js): each parses, each import names a file that
// exports what is imported, carries that file's current content hash (tests/js/stamp.mjs), and
// the templates load the entries as modules. A broken import fails here, not on a phone.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";

import { importsOf, JS, modules, ROOT, staleImports } from "./stamp.mjs";

const files = modules();
const name = (file) => relative(ROOT, file);

/** The names a module exports (declarations and export lists; `default` for a default export). */
function exportsOf(source) {
  const names = new Set();
  for (const match of source.matchAll(/^export\s+(?:async\s+)?(?:function\*?|const|let|var|class)\s+([\w$]+)/gm)) names.add(match[1]);
  for (const match of source.matchAll(/^export\s*\{([^}]*)\}/gm)) {
    for (const item of match[1].split(",")) if (item.trim()) names.add(item.trim().split(/\s+as\s+/).pop());
  }
  if (/^export\s+default\b/m.test(source)) names.add("default");
  return names;
}

/** The names an import statement takes: [[imported, local]], or null for `* as x` / side effects. */
function namesOf(statement) {
  const braces = /\{([^}]*)\}/.exec(statement);
  const named = braces ? braces[1].split(",").map((item) => item.trim()).filter(Boolean).map((item) => item.split(/\s+as\s+/)) : [];
  const fallback = /^import\s+([\w$]+)\s*(?:,|from)/.exec(statement);
  if (fallback) named.push(["default", fallback[1]]);
  return named;
}

test("there are modules to check", () => {
  assert.ok(files.length >= 10, files.map(name).join(", "));
  for (const expected of ["lib/dom.js", "lib/decimal.js", "hub.js", "app.js", "trade.js"]) {
    assert.ok(files.includes(join(JS, expected)), expected);
  }
});

test("every module parses as an ES module (node --check)", () => {
  for (const file of files) {
    const result = spawnSync(process.execPath, ["--check", file], { encoding: "utf8" });
    assert.equal(result.status, 0, `${name(file)}:\n${result.stderr}`);
  }
});

test("every relative import is stamped with the current hash of its file", () => {
  const stale = staleImports();
  assert.deepEqual(stale, [], `stale imports: run \`node tests/js/stamp.mjs\`\n${stale.join("\n")}`);
});

test("every imported name is exported by the module named", () => {
  for (const file of files) {
    const source = readFileSync(file, "utf8");
    for (const statement of source.match(/^import\b[^;]*?from\s*"[^"]+"/gm) ?? []) {
      const [item] = importsOf(file, statement);
      if (!item) continue;
      const exported = exportsOf(readFileSync(item.path, "utf8"));
      for (const [imported] of namesOf(statement)) {
        assert.ok(exported.has(imported), `${name(file)} imports ${imported} from ${item.specifier}, which does not export it`);
      }
    }
  }
});

test("the import graph has no cycle (a stamp cannot contain its own hash)", () => {
  const state = new Map(); // file → "visiting" | "done"
  const visit = (file, trail) => {
    if (state.get(file) === "done") return;
    assert.notEqual(state.get(file), "visiting", `import cycle: ${[...trail, file].map(name).join(" → ")}`);
    state.set(file, "visiting");
    for (const item of importsOf(file)) visit(item.path, [...trail, file]);
    state.set(file, "done");
  };
  for (const file of files) visit(file, []);
});

test("the templates load the page's scripts as modules, none inline (the CSP allows no inline script)", () => {
  const folder = join(ROOT, "webapp", "templates");
  const templates = readdirSync(folder).filter((file) => file.endsWith(".html"));
  const entries = [];
  for (const template of templates) {
    const html = readFileSync(join(folder, template), "utf8");
    for (const [tag] of html.matchAll(/<script\b[^>]*>/g)) {
      assert.match(tag, /\bsrc=/, `${template}: inline <script>`);
      const own = /asset\('js\/([^']+)'\)/.exec(tag);
      if (!own) continue;
      assert.match(tag, /\btype="module"/, `${template}: ${tag} is not a module`);
      assert.doesNotMatch(tag, /\b(defer|async)\b/, `${template}: ${tag}: a module is deferred already`);
      assert.ok(files.includes(join(JS, own[1])), `${template}: no static/js/${own[1]}`);
      entries.push(own[1]);
    }
  }
  for (const expected of ["hub.js", "app.js", "trade.js"]) assert.ok(entries.includes(expected), expected);
});
