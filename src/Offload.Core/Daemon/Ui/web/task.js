// One task: its facts, the question it waits on, the follow-up actions, and its live log, plan, diff and checkpoints.
// Every action is the API's (the same services as the CLI's verbs): a refusal is shown in the daemon's words.
import { api, esc, h, age, tokens, cost, duration, isFinal, setConnection, STATUS_LABEL } from "./util.js";
import { renderDiff } from "./diff.js";

const EVENT_TYPES = ["task.created", "task.status", "message.user", "message.assistant", "tool.call", "tool.result", "usage", "model.retry",
  "permission.requested", "permission.answered", "checkpoint", "error", "engine.note", "task.finished", "attempt.started", "task.rewound",
  "task.limits", "task.merged", "task.discarded", "worktree.restored", "context.compacted", "plan.item", "plan.proposed", "plan.approved", "check.ran",
  "setup.ran"];

export async function taskPage(main, id) {
  main.innerHTML = `
    <div class="task-head"><h1 id="title">Task ${id}</h1><span id="status" class="badge"></span></div>
    <div id="facts" class="facts"></div>
    <div id="message" role="alert" aria-live="assertive"></div>
    <div id="ask"></div>
    <div class="actions" id="actions"></div>
    <form id="reply" class="panel" aria-label="Reply">
      <h2><label for="reply-text">Reply</label></h2>
      <textarea id="reply-text" placeholder="A follow-up for the agent: it goes on from where it stopped (Ctrl+Enter sends)"></textarea>
      <div class="actions"><button type="submit" class="primary">Send reply</button></div>
    </form>
    <div class="tabs" role="tablist" aria-label="Task views">
      <button role="tab" id="tab-log" aria-selected="true" aria-controls="view-log">Log</button>
      <button role="tab" id="tab-plan" aria-selected="false" aria-controls="view-plan" tabindex="-1">Plan</button>
      <button role="tab" id="tab-diff" aria-selected="false" aria-controls="view-diff" tabindex="-1">Diff</button>
      <button role="tab" id="tab-checkpoints" aria-selected="false" aria-controls="view-checkpoints" tabindex="-1">Checkpoints</button>
    </div>
    <section id="view-log" role="tabpanel" aria-labelledby="tab-log"><label class="muted"><input type="checkbox" id="follow" checked> follow</label><div id="log" class="log"></div></section>
    <section id="view-plan" role="tabpanel" aria-labelledby="tab-plan" hidden></section>
    <section id="view-diff" role="tabpanel" aria-labelledby="tab-diff" hidden></section>
    <section id="view-checkpoints" role="tabpanel" aria-labelledby="tab-checkpoints" hidden></section>`;
  const $ = sel => main.querySelector(sel);
  const log = $("#log");
  const calls = new Map(); // callId → its <details>, to put the result in
  let details = null;
  let current = "log";
  let closed = false;

  // --- messages ---
  function say(text, ok = false) {
    const box = $("#message");
    box.replaceChildren(h("div", { class: ok ? "notice" : "alert", text }));
    box.scrollIntoView({ block: "nearest" });
  }
  async function act(button, work, done) {
    button.disabled = true;
    try {
      const result = await work();
      if (done) say(done(result), true);
      refreshSoon();
    } catch (e) {
      say(e.toString());
    } finally {
      button.disabled = false;
    }
  }

  // --- facts and actions ---
  async function refresh() {
    try {
      details = await api(`/v1/tasks/${id}/details`);
    } catch (e) {
      say(e.toString());
      return;
    }
    const t = details.task;
    document.title = `#${t.id} ${t.title} · Offload`;
    $("#title").textContent = `#${t.id} ${t.title}`;
    const status = $("#status");
    status.textContent = STATUS_LABEL[t.status];
    status.className = `badge s-${t.status}`;
    status.dataset.status = t.status;
    $("#facts").replaceChildren(...[
      `${t.model} (${t.engine})`, `branch ${t.branch}`, `${t.turns} turns`,
      `${tokens(t.usage.inputTokens)} in · ${tokens(t.usage.outputTokens)} out`, cost(t.usage.costUsd),
      `ran ${duration(details.runSeconds)}`, `created ${age(t.createdAt)} ago`, t.repoPath,
      t.group != null ? h("a", { href: `#/compare?group=${t.group}` }, `group g${t.group}`) : null,
      t.plan ? `plan ${t.plan.done}/${t.plan.total}` : null,
    ].filter(Boolean).map(x => h("span", {}, x)));
    if (t.summary || t.error) $("#facts").append(h("span", { class: t.error ? "s-failed" : "" }, t.error || ""));
    drawActions(t);
    await drawAsk(t);
    if (current === "plan") drawPlan();
    if (current === "checkpoints") drawCheckpoints();
    if (current === "diff" && isFinal(t.status)) drawDiff();
  }
  let timer = 0;
  function refreshSoon() { if (!timer && !closed) timer = setTimeout(() => { timer = 0; refresh(); }, 150); }

  function drawActions(t) {
    const final = isFinal(t.status);
    const buttons = [];
    if (!final) buttons.push(h("button", { class: "danger", id: "cancel", onclick: e => act(e.target, () => api(`/v1/tasks/${id}/cancel`, { method: "POST" }), r => `task ${r.id} ${r.status}`) }, "Cancel"));
    if (final && !t.discarded) {
      buttons.push(h("button", { class: "primary", id: "merge", onclick: e => act(e.target, () => api(`/v1/tasks/${id}/merge`, { method: "POST", body: { squash: true } }),
        r => r.commit ? `merged task ${r.id} into ${r.into} as ${r.commit.slice(0, 12)} (${r.files.length} files)` : `nothing to merge: task ${r.id} changed nothing`) }, "Merge"));
      buttons.push(h("button", { id: "merge-commit", onclick: e => act(e.target, () => api(`/v1/tasks/${id}/merge`, { method: "POST", body: { squash: false } }),
        r => `merged task ${r.id} into ${r.into} with a merge commit`) }, "Merge (keep commits)"));
      buttons.push(h("button", { id: "apply", onclick: e => act(e.target, () => api(`/v1/tasks/${id}/apply`, { method: "POST" }),
        r => `applied task ${r.id}'s changes to ${r.into}, uncommitted (${r.files.length} files)`) }, "Apply"));
      buttons.push(h("button", { class: "danger", id: "discard", onclick: e => {
        if (confirm(`Discard task ${id}? Its branch and worktree are deleted.`))
          act(e.target, () => api(`/v1/tasks/${id}/discard`, { method: "POST", body: { force: false } }), r => `discarded task ${r.id}`);
      } }, "Discard"));
    }
    buttons.push(h("a", { href: `#/compare?ids=${id}` }, "compare with its series"));
    $("#actions").replaceChildren(...buttons);
  }

  async function drawAsk(t) {
    const ask = $("#ask");
    if (t.status !== "needs_input") { ask.replaceChildren(); delete ask.dataset.question; return; }
    let pending = null;
    try { pending = (await api(`/v1/tasks/${id}/permission`)).pending; } catch (e) { say(e.toString()); }
    // The panel stays as it is while the same question is open: an event that redraws the page must not wipe a reason
    // being typed (or take the focus from it).
    const question = JSON.stringify(pending) + (details.proposedPlan || "");
    if ($("#ask-panel") && ask.dataset.question === question) return;
    ask.dataset.question = question;
    const reason = h("input", { type: "text", id: "deny-reason", placeholder: "why (the agent reads it)", "aria-label": "Reason for denying" });
    const plan = details.proposedPlan && !details.approvedPlan ? h("div", {}, h("h2", {}, "The agent proposes this plan"), h("pre", { text: details.proposedPlan })) : null;
    const what = pending
      ? h("div", {}, h("h2", {}, `Waiting for approval: ${pending.tool}`), h("pre", { class: "out", text: JSON.stringify(pending.input, null, 2) }),
        pending.rule ? h("p", { class: "muted", text: `asked because: ${pending.rule}` }) : null)
      : h("h2", {}, "Waiting for input");
    ask.replaceChildren(h("div", { class: "panel ask", id: "ask-panel" }, plan, what, h("div", { class: "actions" },
      h("button", { class: "primary", id: "approve", onclick: e => act(e.target, () => api(`/v1/tasks/${id}/approve`, { method: "POST", body: { always: false } }), r => `approved ${r.tool}`) }, "Approve"),
      h("button", { id: "approve-always", onclick: e => act(e.target, () => api(`/v1/tasks/${id}/approve`, { method: "POST", body: { always: true } }), r => `approved ${r.tool}; ${r.rule} is allowed for the rest of the task`) }, "Approve always"),
      reason,
      h("button", { class: "danger", id: "deny", onclick: e => act(e.target, () => api(`/v1/tasks/${id}/deny`, { method: "POST", body: { reason: reason.value || null } }), r => `denied ${r.tool}`) }, "Deny"))));
  }

  // --- reply ---
  const replyText = $("#reply-text");
  $("#reply").addEventListener("submit", e => {
    e.preventDefault();
    const text = replyText.value.trim();
    if (!text) { say("a reply needs some text"); return; }
    act(e.submitter || $("#reply button"), async () => { const r = await api(`/v1/tasks/${id}/reply`, { method: "POST", body: { text } }); replyText.value = ""; return r; },
      r => `task ${r.id} goes on with your reply (${STATUS_LABEL[r.status]})`);
  });
  replyText.addEventListener("keydown", e => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("#reply").requestSubmit(); });

  // --- tabs (arrow keys move between them) ---
  const tabs = [...main.querySelectorAll("[role=tab]")];
  function show(name) {
    current = name;
    for (const tab of tabs) {
      const on = tab.id === `tab-${name}`;
      tab.setAttribute("aria-selected", on);
      tab.tabIndex = on ? 0 : -1;
      $(`#view-${tab.id.slice(4)}`).hidden = !on;
    }
    if (name === "plan") drawPlan();
    if (name === "diff") drawDiff();
    if (name === "checkpoints") drawCheckpoints();
  }
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => show(tab.id.slice(4)));
    tab.addEventListener("keydown", e => {
      const next = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (next) { const to = tabs[(i + next + tabs.length) % tabs.length]; to.focus(); show(to.id.slice(4)); }
    });
  });

  function drawPlan() {
    const view = $("#view-plan");
    if (!details) return;
    const items = (details.plan || []).filter(p => p.status !== "deleted");
    const mark = { pending: "○", in_progress: "◐", completed: "●" };
    view.replaceChildren(
      items.length ? h("ul", { class: "plan" }, items.map(p => h("li", { class: p.status, title: p.description }, `${mark[p.status] || "·"} #${p.id} ${p.status === "in_progress" && p.activeForm ? p.activeForm : p.subject}`)))
        : h("p", { class: "muted" }, "The agent has no plan (it makes one with TaskCreate on longer tasks)."),
      details.approvedPlan ? h("details", {}, h("summary", {}, "Approved plan"), h("pre", { text: details.approvedPlan })) : null,
      details.proposedPlan && !details.approvedPlan ? h("details", { open: true }, h("summary", {}, "Proposed plan"), h("pre", { text: details.proposedPlan })) : null);
  }

  async function drawDiff() {
    const view = $("#view-diff");
    try {
      const text = await api(`/v1/tasks/${id}/diff`, { text: true });
      await renderDiff(view, text);
    } catch (e) {
      view.replaceChildren(h("div", { class: "alert", text: e.toString() }));
    }
  }

  async function drawCheckpoints() {
    const view = $("#view-checkpoints");
    try {
      const { items } = await api(`/v1/tasks/${id}/checkpoints`);
      if (!items.length) { view.replaceChildren(h("p", { class: "muted" }, "No checkpoints: one is taken after each turn that changed files.")); return; }
      view.replaceChildren(h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, h("th", {}, "after turn"), h("th", {}, "commit"), h("th", {}, "files changed"), h("th", {}, "when"), h("th", {}, ""))),
        h("tbody", {}, items.map(c => h("tr", {},
          h("td", { class: "num" }, c.turn), h("td", {}, h("code", {}, c.commit.slice(0, 12))), h("td", { class: "num" }, c.filesChanged), h("td", {}, `${age(c.at)} ago`),
          h("td", {}, h("button", { "data-turn": c.turn, onclick: e => {
            if (confirm(`Rewind task ${id} to after turn ${c.turn}? Its files and conversation go back there (the rest stays on record).`))
              act(e.target, () => api(`/v1/tasks/${id}/rewind`, { method: "POST", body: { turn: c.turn } }), r => `task ${r.task.id} rewound to after turn ${r.checkpoint.turn}; reply to go on`);
          } }, "Rewind")))))));
    } catch (e) {
      view.replaceChildren(h("div", { class: "alert", text: e.toString() }));
    }
  }

  // --- the live log ---
  function at(e) { return h("span", { class: "at", title: e.at }, new Date(e.at).toLocaleTimeString()); }
  function add(el, e) {
    if (e.subagent) { el.classList.add("sub"); el.prepend(h("span", { class: "muted" }, "subagent · ")); }
    el.dataset.seq = e.seq;
    el.dataset.type = e.type;
    log.append(el);
    if ($("#follow").checked) el.scrollIntoView({ block: "end" });
  }
  function toolSummary(name, input) {
    const i = input || {};
    const arg = i.command ?? i.file_path ?? i.pattern ?? i.path ?? i.description ?? i.subject ?? i.url;
    return arg != null ? `${name} ${String(arg).split("\n")[0].slice(0, 160)}` : `${name} ${JSON.stringify(i).slice(0, 160)}`;
  }
  const render = {
    "task.created": e => h("div", { class: "ev user" }, at(e), h("strong", {}, "prompt "), h("div", { class: "text", text: e.prompt })),
    "message.user": e => h("div", { class: "ev user" }, at(e), h("strong", {}, e.source === "user" ? "you " : `${e.source} `), h("div", { class: "text", text: e.text })),
    "message.assistant": e => h("div", { class: "ev assistant" }, at(e), h("strong", {}, `turn ${e.turn} `),
      (e.thinking || []).map(t => h("details", { class: "thinking" }, h("summary", {}, t.redactedData ? "thinking (redacted)" : "thinking"), t.text ? h("div", { class: "text muted", text: t.text }) : null)),
      e.text ? h("div", { class: "text", text: e.text }) : null),
    "tool.call": e => {
      const el = h("details", { class: "call" }, h("summary", {}, toolSummary(e.name, e.input)), h("pre", { class: "out", text: JSON.stringify(e.input, null, 2) }));
      calls.set(e.callId, el);
      return h("div", { class: "ev tool", "data-call": e.callId }, at(e), el);
    },
    "tool.result": e => {
      const call = calls.get(e.callId);
      const out = h("pre", { class: "out result", text: e.output + (e.truncated ? `\n… cut; the whole output is in ${e.fullOutputPath}` : "") });
      if (call) {
        call.append(h("div", { class: "muted" }, e.isError ? "error" : e.exitCode != null ? `exit ${e.exitCode}` : "result"), out);
        if (e.isError) call.parentElement.classList.add("failed");
        call.querySelector("summary").append(h("span", { class: e.isError ? "s-failed" : "muted" }, e.isError ? "  ✗" : "  ✓"));
        return null;
      }
      return h("div", { class: `ev tool ${e.isError ? "failed" : ""}` }, at(e), h("details", {}, h("summary", {}, `${e.name} result`), out));
    },
    "task.status": e => h("div", { class: "ev status" }, at(e), `${STATUS_LABEL[e.from]} → `, h("strong", { class: `s-${e.to}` }, STATUS_LABEL[e.to]), e.reason ? ` (${e.reason})` : ""),
    "permission.requested": e => h("div", { class: "ev ask" }, at(e), h("strong", {}, "needs approval: "), toolSummary(e.tool, e.input), e.rule ? h("div", { class: "muted" }, `asked because: ${e.rule}`) : null),
    "permission.answered": e => h("div", { class: "ev ask" }, at(e), e.allowed ? `approved${e.always ? " (always)" : ""}` : `denied${e.reason ? `: ${e.reason}` : ""}`),
    "checkpoint": e => h("div", { class: "ev status" }, at(e), `checkpoint after turn ${e.turn}: ${e.filesChanged} files changed `,
      h("button", { onclick: () => { show("checkpoints"); $("#tab-checkpoints").focus(); } }, "checkpoints…")),
    "context.compacted": e => h("div", { class: "ev status" }, at(e), `compacted the conversation (${e.reason}): ${tokens(e.tokensBefore)} → ${tokens(e.tokensAfter)} tokens of ${tokens(e.window)}, ${e.cleared.length} outputs cleared`,
      e.summary ? h("details", {}, h("summary", {}, "summary"), h("div", { class: "text", text: e.summary })) : null),
    "error": e => h("div", { class: "ev error" }, at(e), h("strong", {}, "error: "), e.message, e.detail ? h("pre", { text: e.detail }) : null),
    "task.finished": e => h("div", { class: "ev assistant" }, at(e), h("strong", { class: `s-${e.status}` }, `finished: ${STATUS_LABEL[e.status]}`), e.reason ? ` (${e.reason})` : "", e.summary ? h("div", { class: "text", text: e.summary }) : null),
    "model.retry": e => h("div", { class: "ev status" }, at(e), `model call retried (try ${e.try}, after ${e.delayMs} ms): ${e.reason}`),
    "attempt.started": e => h("div", { class: "ev status" }, at(e), `attempt ${e.number} started with ${e.model}`),
    "task.rewound": e => h("div", { class: "ev status" }, at(e), `rewound to after turn ${e.turn}`),
    "task.limits": e => h("div", { class: "ev status" }, at(e), `limits changed`),
    "task.merged": e => h("div", { class: "ev status" }, at(e), `${e.mode === "apply" ? "applied to" : "merged into"} ${e.into}${e.commit ? ` as ${e.commit.slice(0, 12)}` : ""}`),
    "task.discarded": e => h("div", { class: "ev status" }, at(e), "discarded"),
    "worktree.restored": e => h("div", { class: "ev error" }, at(e), `the worktree was gone and was made again from ${e.branchCommit.slice(0, 12)}`),
    "plan.item": e => h("div", { class: "ev status" }, at(e), `plan #${e.item.id} ${e.item.status}: ${e.item.subject} (${e.done}/${e.total})`),
    "plan.proposed": e => h("div", { class: "ev ask" }, at(e), h("details", { open: true }, h("summary", {}, "plan proposed"), h("pre", { text: e.plan }))),
    "plan.approved": e => h("div", { class: "ev status" }, at(e), "plan approved"),
    "check.ran": e => h("div", { class: `ev ${e.passed ? "status" : "error"}` }, at(e), `check ${e.passed ? "passed" : "failed"} (try ${e.try}): ${e.command}`,
      e.outputTail ? h("details", {}, h("summary", {}, "output"), h("pre", { class: "out", text: e.outputTail })) : null),
    "setup.ran": e => h("div", { class: `ev ${e.passed ? "status" : "error"}` }, at(e), `setup ${e.passed ? "passed" : "failed"}: ${e.command}`
      + (e.keptOut?.length ? ` (never committed: ${e.keptOut.join(", ")})` : ""),
      e.outputTail ? h("details", { open: !e.passed }, h("summary", {}, "output"), h("pre", { class: "out", text: e.outputTail })) : null),
    "engine.note": e => h("div", { class: "ev status" }, at(e), h("details", {}, h("summary", {}, e.kind), h("pre", { class: "out", text: e.text }))),
    "usage": () => null,
  };
  const source = new EventSource(`/v1/tasks/${id}/events?follow=1`); // a reconnect sends Last-Event-ID: nothing twice
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, m => {
      const e = JSON.parse(m.data);
      if (log.querySelector(`[data-seq="${e.seq}"]`)) return;
      const el = render[type](e);
      if (el) add(el, e);
      if (type !== "tool.call" && type !== "tool.result" && type !== "message.assistant") refreshSoon();
    });
  }
  source.onopen = () => setConnection("live");
  source.onerror = () => setConnection(source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…");

  await refresh();
  return () => { closed = true; source.close(); clearTimeout(timer); };
}
