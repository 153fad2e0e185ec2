import { get, q } from "../api.js";
import { h, when } from "../dom.js";

// auditView pages through the audit log (admins only: the API refuses
// the others).
export async function auditView(main) {
  const tbody = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "More");
  main.append(h("h1", {}, "Audit log"),
    h("table", { id: "audit" }, h("thead", {}, h("tr", {}, ["Time", "Who", "Action", "Subject", "Detail"].map((c) => h("th", {}, c)))), tbody),
    h("div", { class: "pager" }, more));
  let cursor = "";
  async function page() {
    const p = await get("/api/v1/audit" + q({ limit: 100, cursor }));
    tbody.append(...p.items.map((e) => h("tr", {}, h("td", {}, when(e.time)), h("td", {}, e.actor), h("td", { class: "mono" }, e.action),
      h("td", { class: "mono" }, e.subject), h("td", {}, e.detail || ""))));
    cursor = p.next;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => page());
  await page();
}
