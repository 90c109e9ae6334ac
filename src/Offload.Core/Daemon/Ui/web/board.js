// The board: every task by status, live. One stream (GET /v1/tasks/stream) sends the tasks, then each task again as it
// changes; the board is drawn again on the next frame after a change, keeping the focused card focused.
import { esc, age, tokens, cost, setConnection, repoName, STATUS_LABEL } from "./util.js";

const COLUMNS = [
  { key: "queued", title: "Queued", statuses: ["queued"] },
  { key: "running", title: "Running", statuses: ["running"] },
  { key: "needs_input", title: "Needs input", statuses: ["needs_input"] },
  { key: "done", title: "Done", statuses: ["succeeded"] },
  { key: "failed", title: "Failed / cancelled", statuses: ["failed", "cancelled", "limited"] },
];
const columnOf = Object.fromEntries(COLUMNS.flatMap(c => c.statuses.map(s => [s, c.key])));

export function board(main) {
  const tasks = new Map();
  let filter = "";
  let drawn = false;
  let more = false;
  main.innerHTML = `
    <div class="toolbar">
      <h1 class="visually-hidden">Board</h1>
      <input type="search" id="filter" placeholder="Filter (/)" aria-label="Filter tasks by title, model, repository or number">
      <span id="counts" class="muted"></span>
    </div>
    <div id="board" aria-live="off"></div>`;
  const area = main.querySelector("#board");
  const input = main.querySelector("#filter");
  input.addEventListener("input", () => { filter = input.value.trim().toLowerCase(); schedule(); });
  const onKey = e => {
    if (e.key === "/" && document.activeElement !== input && !(e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLInputElement)) {
      e.preventDefault(); input.focus();
    }
  };
  document.addEventListener("keydown", onKey);

  // At most four draws a second: a busy task changes many times a second, and the board has up to 1,000 cards.
  let pending = 0, last = 0;
  function schedule() {
    if (pending) return;
    const wait = Math.max(0, last + 250 - performance.now());
    pending = setTimeout(() => requestAnimationFrame(() => { pending = 0; last = performance.now(); draw(); }), wait);
  }

  function draw() {
    const focused = document.activeElement?.dataset?.id;
    const now = Date.now();
    const shown = [...tasks.values()].filter(t => !t.discarded && matches(t)).sort((a, b) => b.id - a.id);
    const byRepo = new Map();
    for (const t of shown) {
      if (!byRepo.has(t.repoPath)) byRepo.set(t.repoPath, []);
      byRepo.get(t.repoPath).push(t);
    }
    const html = [];
    for (const [repo, list] of byRepo) {
      html.push(`<details class="repo" open><summary title="${esc(repo)}">${esc(repoName(repo))} <span class="muted">${esc(repo)} · ${list.length}</span></summary><div class="columns">`);
      for (const column of COLUMNS) {
        const cards = list.filter(t => columnOf[t.status] === column.key);
        html.push(`<section class="column ${column.key}" aria-label="${column.title}" data-column="${column.key}"><h3><span>${column.title}</span><span>${cards.length}</span></h3>`);
        // The tasks of one best-of-N group sit together, in a frame that links to their comparison.
        const seen = new Set();
        for (const t of cards) {
          if (t.group == null) { html.push(card(t, now)); continue; }
          if (seen.has(t.group)) continue;
          seen.add(t.group);
          const members = cards.filter(m => m.group === t.group);
          const all = shown.filter(m => m.group === t.group);
          html.push(`<div class="group" data-group="${t.group}"><div class="label"><span>group g${t.group} · ${all.length} tasks</span><a href="#/compare?group=${t.group}">compare</a></div>${members.map(m => card(m, now)).join("")}</div>`);
        }
        html.push(`</section>`);
      }
      html.push(`</div></details>`);
    }
    if (shown.length === 0) html.push(`<p class="muted">${tasks.size ? "No task matches the filter." : "No tasks yet. Start one with <code>offload run \"…\"</code>."}</p>`);
    if (more) html.push(`<p class="muted">Older tasks are not on the board: <code>offload ls --all</code> lists them.</p>`);
    area.innerHTML = html.join("");
    // Widths are set here: style attributes are refused by the page's content security policy.
    area.querySelectorAll("[data-w]").forEach(bar => { bar.style.width = bar.dataset.w + "%"; });
    const counts = COLUMNS.map(c => `${shown.filter(t => columnOf[t.status] === c.key).length} ${c.title.toLowerCase()}`);
    main.querySelector("#counts").textContent = counts.join(" · ");
    if (focused) area.querySelector(`[data-id="${focused}"]`)?.focus();
    if (!drawn) { drawn = true; performance.mark("board-drawn"); document.body.dataset.board = "drawn"; }
  }

  function matches(t) {
    if (!filter) return true;
    return `#${t.id} ${t.title} ${t.model} ${t.repoPath} ${t.status} ${(t.tags || []).join(" ")}`.toLowerCase().includes(filter);
  }

  const source = new EventSource("/v1/tasks/stream");
  source.addEventListener("snapshot", e => {
    const page = JSON.parse(e.data);
    tasks.clear();
    for (const t of page.items) tasks.set(t.id, t);
    more = page.next != null;
    setConnection("live");
    schedule();
  });
  source.addEventListener("task", e => {
    const t = JSON.parse(e.data);
    tasks.set(t.id, t);
    schedule();
  });
  source.onerror = () => setConnection("reconnecting…");
  const ticker = setInterval(schedule, 30_000); // ages move on

  return () => { source.close(); clearInterval(ticker); document.removeEventListener("keydown", onKey); clearTimeout(pending); };
}

function card(t, now) {
  const plan = t.plan && t.plan.total > 0
    ? `<span title="plan: ${t.plan.done} of ${t.plan.total} done">plan ${t.plan.done}/${t.plan.total}</span>` : "";
  const bar = t.plan && t.plan.total > 0
    ? `<div class="progress" role="progressbar" aria-label="plan" aria-valuemin="0" aria-valuemax="${t.plan.total}" aria-valuenow="${t.plan.done}"><span data-w="${Math.round(100 * t.plan.done / t.plan.total)}"></span></div>` : "";
  const flag = t.status === "needs_input" ? `<div class="flag">NEEDS INPUT</div>` : "";
  return `<a class="card ${t.status}" href="#/task/${t.id}" data-id="${t.id}" data-status="${t.status}" aria-label="task ${t.id}: ${esc(t.title)}, ${STATUS_LABEL[t.status]}">
    ${flag}<div class="title">#${t.id} ${esc(t.title)}</div>
    <div class="meta"><span>${esc(t.model)}</span><span>${t.turns} turn${t.turns === 1 ? "" : "s"}</span><span>${tokens(t.usage.inputTokens + t.usage.outputTokens)} tok</span><span>${cost(t.usage.costUsd)}</span><span title="${esc(t.createdAt)}">${age(t.createdAt, now)}</span>${plan}${t.status !== "needs_input" && t.status !== "queued" && t.status !== "running" ? `<span class="s-${t.status}">${STATUS_LABEL[t.status]}</span>` : ""}</div>${bar}</a>`;
}
