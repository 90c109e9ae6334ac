// The dashboard: one page, routed by the address's #fragment. Every figure comes from the daemon's API on this same
// listener (docs/ui.md); the page holds no rules of its own: a refusal is the daemon's, shown in its words.
import { board } from "./board.js";
import { taskPage } from "./task.js";
import { comparePage } from "./compare.js";
import { statsPage } from "./stats.js";

const main = document.getElementById("main");
let leave = null; // the current page's clean-up (its live streams)

async function route() {
  if (leave) { leave(); leave = null; }
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  document.querySelectorAll("[data-nav]").forEach(a => {
    if (a.dataset.nav === (parts[0] === "task" ? "board" : parts[0] || "board")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  main.replaceChildren();
  if (parts[0] === "task" && /^\d+$/.test(parts[1] || "")) leave = await taskPage(main, Number(parts[1]));
  else if (parts[0] === "compare") leave = await comparePage(main, params);
  else if (parts[0] === "stats") leave = await statsPage(main, params);
  else leave = board(main);
}

window.addEventListener("hashchange", route);
route();
