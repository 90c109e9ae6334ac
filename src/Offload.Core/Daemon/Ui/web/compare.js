// Tasks side by side (GET /v1/compare, as `offload compare`): two or more tasks, a group, or one task's series.
import { api, esc, h, tokens, cost, duration, STATUS_LABEL } from "./util.js";

export async function comparePage(main, params) {
  const current = params.get("group") ? `g${params.get("group")}` : (params.get("ids") || "").split(",").join(" ");
  const input = h("input", { type: "text", id: "compare-what", value: current, placeholder: "3 4 · g2 · 3 (its series)", "aria-label": "Tasks or group to compare" });
  const form = h("form", { class: "toolbar", onsubmit: e => {
    e.preventDefault();
    const words = input.value.trim().split(/[\s,]+/).filter(Boolean);
    const group = words.find(w => /^g\d+$/i.test(w));
    location.hash = group ? `#/compare?group=${group.slice(1)}` : `#/compare?ids=${words.join(",")}`;
  } }, h("h1", { class: "visually-hidden" }, "Compare"), input, h("button", { type: "submit", class: "primary" }, "Compare"));
  const out = h("div", { id: "compare" });
  main.replaceChildren(form, out);
  if (!current) { out.append(h("p", { class: "muted" }, "Name two or more tasks (3 4), a best-of-N group (g2), or one task to see its series (the tasks that ran it again).")); return null; }
  let result;
  try {
    const query = params.get("group") ? `group=${encodeURIComponent(params.get("group"))}` : `ids=${encodeURIComponent(params.get("ids") || "")}`;
    result = await api(`/v1/compare?${query}`);
  } catch (e) {
    out.append(h("div", { class: "alert", role: "alert", text: e.toString() }));
    return null;
  }
  const tasks = result.tasks;
  const row = (name, cell) => h("tr", {}, h("th", { scope: "row" }, name), tasks.map(t => h("td", {}, cell(t))));
  out.append(h("h2", {}, `Comparing ${result.of}`), h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", {}), tasks.map(t => h("th", { scope: "col" }, h("a", { href: `#/task/${t.task.id}` }, `#${t.task.id}`))))),
    h("tbody", {},
      row("title", t => t.task.title),
      row("model", t => t.task.model),
      row("status", t => h("span", { class: `s-${t.task.status}` }, STATUS_LABEL[t.task.status])),
      row("check", t => t.check ? (t.check.passed ? "passed" : `failed (exit ${t.check.exitCode ?? "?"})`) : "–"),
      row("tests run", t => t.tests.length ? t.tests.map(c => `${c.command} → ${c.exitCode ?? "?"}`).join("\n") : "–"),
      row("turns", t => t.task.turns),
      row("tokens", t => `${tokens(t.task.usage.inputTokens)} in · ${tokens(t.task.usage.outputTokens)} out`),
      row("cost", t => cost(t.task.usage.costUsd)),
      row("run time", t => duration(t.runSeconds)),
      row("files", t => t.files.length ? t.files.map(f => `${f.path} +${f.added} −${f.deleted}`).join("\n") : "none"))));
  if (tasks.length >= 2) {
    const pick = (id, i) => h("select", { id, "aria-label": i ? "second task" : "first task" }, tasks.map((t, j) => h("option", { value: t.task.id, selected: j === i }, `#${t.task.id} ${t.task.model}`)));
    const a = pick("diff-a", 0), b = pick("diff-b", 1);
    const diff = h("div");
    out.append(h("div", { class: "panel" }, h("h2", {}, "How one task's branch differs from another's"),
      h("div", { class: "actions" }, a, " → ", b, h("button", { onclick: async () => {
        try {
          const { renderDiff } = await import("./diff.js");
          await renderDiff(diff, await api(`/v1/compare/diff?a=${a.value}&b=${b.value}`, { text: true }));
        } catch (e) { diff.replaceChildren(h("div", { class: "alert", text: e.toString() })); }
      } }, "Show diff")), diff));
  }
  return null;
}
