import { get, q } from "../api.js";
import { h, link, status, duration, ago, when } from "../dom.js";
import { navigate } from "../app.js";

const statuses = ["", "running", "waiting", "passed", "failed", "rejected", "cancelled", "interrupted"];

// runsView lists runs, newest first, with filters kept in the URL, and
// refreshes itself while it is shown.
export async function runsView(main, _m, params) {
  const filters = { status: params.get("status") || "", branch: params.get("branch") || "", pipeline: params.get("pipeline") || "" };
  const statusSel = h("select", { name: "status", id: "filter-status" }, statuses.map((s) => h("option", { value: s, selected: s === filters.status }, s || "any")));
  const branch = h("input", { name: "branch", id: "filter-branch", value: filters.branch, placeholder: "any" });
  const pipeline = h("input", { name: "pipeline", id: "filter-pipeline", value: filters.pipeline, placeholder: "any" });
  const apply = (ev) => {
    ev.preventDefault();
    navigate("/runs" + q({ status: statusSel.value, branch: branch.value.trim(), pipeline: pipeline.value.trim() }), true);
  };
  const tbody = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "More");
  main.append(
    h("h1", {}, "Runs"),
    h("form", { class: "filters", onsubmit: apply },
      h("label", {}, "Status", statusSel), h("label", {}, "Branch", branch), h("label", {}, "Pipeline", pipeline),
      h("button", { type: "submit" }, "Filter")),
    h("table", { id: "runs" },
      h("thead", {}, h("tr", {}, ["#", "Status", "Pipeline", "Branch", "Commit", "Trigger", "Started", "Duration"].map((c) => h("th", {}, c)))),
      tbody),
    h("div", { class: "pager" }, more),
  );
  let next = "";
  let pages = 1;
  const row = (r) =>
    h("tr", { "data-run": r.id },
      h("td", {}, link("/runs/" + r.id, "#" + r.id)),
      h("td", {}, status(r.status)),
      h("td", {}, r.pipeline),
      h("td", { class: "mono" }, r.branch || ""),
      h("td", {}, h("span", { class: "mono" }, (r.sha || "").slice(0, 10)), " ", h("span", { class: "muted" }, firstLine(r.message))),
      h("td", {}, r.event || r.trigger || ""),
      h("td", { title: when(r.started) }, ago(r.started)),
      h("td", {}, duration(r.duration_seconds)));
  async function load() {
    // Reload every page shown so far, so that statuses change in place.
    let items = [];
    let cursor = "";
    for (let i = 0; i < pages; i++) {
      const page = await get("/api/v1/runs" + q({ ...filters, limit: 50, cursor }));
      items = items.concat(page.items);
      cursor = page.next;
      if (!cursor) break;
    }
    next = cursor;
    tbody.replaceChildren(...(items.length ? items.map(row) : [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No runs."))]));
    more.hidden = !next;
  }
  more.addEventListener("click", () => {
    pages++;
    load();
  });
  await load();
  const timer = setInterval(() => load().catch(() => {}), 3000);
  return () => clearInterval(timer);
}

function firstLine(s) {
  return (s || "").split("\n")[0].slice(0, 80);
}
