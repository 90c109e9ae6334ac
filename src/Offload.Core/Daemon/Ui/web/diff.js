// A unified diff (git's) as a file tree and highlighted files. highlight.js (vendored from npm, docs/ui.md) is loaded on
// the first diff, so the board does not pay for it.
import { h } from "./util.js";

let hljs = null;
const LANGUAGES = { js: "javascript", mjs: "javascript", cjs: "javascript", ts: "typescript", tsx: "typescript", jsx: "javascript", py: "python", rb: "ruby",
  cs: "csharp", java: "java", kt: "kotlin", go: "go", rs: "rust", c: "c", h: "c", cpp: "cpp", cc: "cpp", hpp: "cpp", sh: "bash", bash: "bash",
  json: "json", yml: "yaml", yaml: "yaml", md: "markdown", html: "xml", xml: "xml", csproj: "xml", css: "css", scss: "scss", sql: "sql",
  php: "php", swift: "swift", toml: "ini", ini: "ini", lua: "lua", pl: "perl", r: "r", makefile: "makefile", dockerfile: "dockerfile" };

/** The files of a diff: path, added and deleted line counts, and its lines (kind: add, del, ctx, hunk, note). */
export function parseDiff(text) {
  const files = [];
  let file = null, oldLine = 0, newLine = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("diff --git ")) {
      const m = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
      file = { path: m ? m[2] : line.slice(11), added: 0, deleted: 0, lines: [] };
      files.push(file);
    } else if (!file) {
      continue;
    } else if (line.startsWith("@@")) {
      const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
      if (m) { oldLine = Number(m[1]); newLine = Number(m[2]); }
      file.lines.push({ kind: "hunk", text: line });
    } else if (line.startsWith("+++ ") || line.startsWith("--- ") || line.startsWith("index ") || /^(new|deleted) file mode|^similarity|^old mode|^new mode/.test(line)) {
      if (line.startsWith("+++ b/")) file.path = line.slice(6);
      if (/^deleted file/.test(line)) file.change = "deleted";
      if (/^new file/.test(line)) file.change = "added";
    } else if (line.startsWith("rename to ")) {
      file.path = line.slice(10);
    } else if (line.startsWith("Binary files")) {
      file.lines.push({ kind: "note", text: "binary file" });
    } else if (line.startsWith("+")) {
      file.added++; file.lines.push({ kind: "add", text: line.slice(1), n: newLine++ });
    } else if (line.startsWith("-")) {
      file.deleted++; file.lines.push({ kind: "del", text: line.slice(1), o: oldLine++ });
    } else if (line.startsWith(" ")) {
      file.lines.push({ kind: "ctx", text: line.slice(1), o: oldLine++, n: newLine++ });
    } else if (line.startsWith("\\")) {
      file.lines.push({ kind: "note", text: line });
    }
  }
  return files;
}

export async function renderDiff(view, text) {
  const files = parseDiff(text);
  if (!files.length) { view.replaceChildren(h("p", { class: "muted" }, "No changes on the task's branch.")); return; }
  if (!hljs) hljs = (await import("./vendor/highlight.min.js")).default;
  const anchor = path => "file-" + path.replace(/[^A-Za-z0-9_-]/g, "_");
  view.replaceChildren(h("div", { class: "diff" },
    h("nav", { class: "tree", "aria-label": "Changed files" }, tree(files, anchor)),
    h("div", { class: "files" }, files.map(f => fileView(f, anchor(f.path))))));
}

function tree(files, anchor) {
  const root = { dirs: new Map(), files: [] };
  for (const f of files) {
    const parts = f.path.split("/");
    let node = root;
    for (const dir of parts.slice(0, -1)) {
      if (!node.dirs.has(dir)) node.dirs.set(dir, { dirs: new Map(), files: [] });
      node = node.dirs.get(dir);
    }
    node.files.push({ name: parts.at(-1), file: f });
  }
  const list = node => h("ul", {},
    [...node.dirs].sort(([a], [b]) => a.localeCompare(b)).map(([name, child]) => h("li", {}, h("span", { class: "muted" }, name + "/"), list(child))),
    node.files.sort((a, b) => a.name.localeCompare(b.name)).map(({ name, file }) => h("li", {},
      h("a", { href: "#" + location.hash.slice(1), "data-target": anchor(file.path), onclick: e => { e.preventDefault(); document.getElementById(anchor(file.path))?.scrollIntoView(); document.getElementById(anchor(file.path))?.focus(); } }, name),
      " ", h("span", { class: "add" }, `+${file.added}`), " ", h("span", { class: "del" }, `−${file.deleted}`))));
  return list(root);
}

function fileView(f, id) {
  const ext = f.path.includes(".") ? f.path.split(".").pop().toLowerCase() : f.path.split("/").pop().toLowerCase();
  const language = LANGUAGES[ext] && hljs.getLanguage(LANGUAGES[ext]) ? LANGUAGES[ext] : null;
  const rows = f.lines.map(l => {
    if (l.kind === "hunk" || l.kind === "note") return h("tr", { class: "hunk" }, h("td", { class: "n" }), h("td", { class: "n" }), h("td", { class: "c", text: l.text }));
    const code = h("td", { class: "c hljs" });
    if (language) code.innerHTML = hljs.highlight(l.text, { language, ignoreIllegals: true }).value; // highlight.js escapes the text
    else code.textContent = l.text;
    return h("tr", { class: l.kind }, h("td", { class: "n" }, l.o ?? ""), h("td", { class: "n" }, l.n ?? ""), code);
  });
  return h("section", { class: "file", id, tabindex: "-1", "aria-label": f.path },
    h("h3", {}, f.path, " ", h("span", { class: "muted" }, f.change ? `(${f.change}) ` : "", `+${f.added} −${f.deleted}`)),
    h("table", {}, h("tbody", {}, rows)));
}
