// Figures across tasks (GET /v1/stats, as `offload stats`) with charts drawn as SVG: cost and tasks per day, and by model.
import { api, esc, h, tokens, cost, duration } from "./util.js";

const SPANS = { "7d": 7, "30d": 30, "90d": 90, all: null };

export async function statsPage(main, params) {
  const span = SPANS[params.get("since")] !== undefined ? params.get("since") : "30d";
  const days = SPANS[span];
  const since = days ? new Date(Date.now() - days * 86400_000).toISOString() : null;
  const tz = -new Date().getTimezoneOffset();
  const q = by => `/v1/stats?by=${by}&tz=${tz}${since ? `&since=${encodeURIComponent(since)}` : ""}`;
  main.replaceChildren(h("div", { class: "toolbar" }, h("h1", { class: "visually-hidden" }, "Stats"), "Since:",
    Object.keys(SPANS).map(s => h("a", { href: `#/stats?since=${s}`, "aria-current": s === span ? "page" : null }, s === "all" ? "all time" : `last ${s}`))));
  let perDay, perModel;
  try {
    [perDay, perModel] = await Promise.all([api(q("day")), api(q("model"))]);
  } catch (e) {
    main.append(h("div", { class: "alert", role: "alert", text: e.toString() }));
    return null;
  }
  const t = perDay.total;
  main.append(h("p", {}, `${t.tasks} tasks, ${t.ended} ended, ${t.successRate == null ? "–" : Math.round(100 * t.successRate) + "%"} succeeded; ` +
    `${cost(t.costUsd)}, ${tokens(t.inputTokens + t.outputTokens)} tokens; median ${duration(t.medianSeconds)}, p90 ${duration(t.p90Seconds)}.`));
  main.append(h("div", { class: "charts" },
    chart("Cost per day", perDay.rows.map(r => [r.key.slice(5), Number(r.costUsd)]), cost, "bar"),
    chart("Tasks per day", perDay.rows.map(r => [r.key.slice(5), r.tasks]), String, "bar alt"),
    chart("Cost by model", perModel.rows.map(r => [r.key, Number(r.costUsd)]), cost, "bar"),
    chart("Tasks by model", perModel.rows.map(r => [r.key, r.tasks]), String, "bar alt")));
  main.append(h("h2", {}, "By model"), h("table", { class: "grid", id: "by-model" },
    h("thead", {}, h("tr", {}, ["model", "tasks", "success", "check pass", "median", "p90", "turns", "tokens", "cost"].map(c => h("th", { scope: "col" }, c)))),
    h("tbody", {}, perModel.rows.map(r => h("tr", {}, h("td", {}, r.key), h("td", { class: "num" }, r.tasks),
      h("td", { class: "num" }, r.successRate == null ? "–" : Math.round(100 * r.successRate) + "%"), h("td", { class: "num" }, r.checkPassRate == null ? "–" : Math.round(100 * r.checkPassRate) + "%"),
      h("td", { class: "num" }, duration(r.medianSeconds)), h("td", { class: "num" }, duration(r.p90Seconds)), h("td", { class: "num" }, r.turns),
      h("td", { class: "num" }, tokens(r.inputTokens + r.outputTokens)), h("td", { class: "num" }, cost(r.costUsd)))))));
  return null;
}

/** A bar chart of [label, value] pairs, as SVG (no library), with each value in the bar's title for screen readers and hover. */
function chart(title, points, format, barClass) {
  const width = 480, height = 200, left = 44, bottom = 36, top = 12;
  const highest = Math.max(0, ...points.map(p => p[1]));
  const max = highest || 1; // all zero: flat bars, and the axis says 0
  const step = points.length ? (width - left) / points.length : 0;
  const bars = points.map(([label, value], i) => {
    const barHeight = (height - top - bottom) * value / max;
    const x = left + i * step + step * 0.15;
    const y = height - bottom - barHeight;
    const every = Math.ceil(points.length / 12);
    return `<g><title>${esc(label)}: ${esc(format(value))}</title><rect class="${barClass}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, step * 0.7).toFixed(1)}" height="${Math.max(0, barHeight).toFixed(1)}"></rect>` +
      (i % every === 0 ? `<text x="${(x + step * 0.35).toFixed(1)}" y="${height - bottom + 12}" text-anchor="middle">${esc(label.length > 14 ? label.slice(0, 13) + "…" : label)}</text>` : "") + `</g>`;
  }).join("");
  const svg = `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">
    <line class="axis" x1="${left}" y1="${height - bottom}" x2="${width}" y2="${height - bottom}"></line>
    <text x="${left - 4}" y="${top + 4}" text-anchor="end">${esc(format(highest))}</text><text x="${left - 4}" y="${height - bottom}" text-anchor="end">0</text>${bars}</svg>`;
  return h("figure", { class: "chart panel" }, h("figcaption", {}, h("strong", {}, title)), points.length ? h("div", { html: svg }) : h("p", { class: "muted" }, "No tasks in this span."));
}
