import { get } from "../api.js";
import { h, link } from "../dom.js";
import { approvalCard } from "./run.js";

// approvalsView lists the approvals waiting runs ask for, with the
// buttons to decide them for the roles that may.
export async function approvalsView(main) {
  const list = h("div", { id: "pending" });
  main.append(h("h1", {}, "Pending approvals"), list);
  async function load() {
    const page = await get("/api/v1/approvals");
    if (!page.items.length) {
      list.replaceChildren(h("p", { class: "muted" }, "Nothing waits for an approval."));
      return;
    }
    list.replaceChildren(...page.items.map((p) =>
      h("div", {}, h("div", { class: "muted" }, link("/runs/" + p.run.id, "Run #" + p.run.id), " ", p.run.pipeline, " ", p.run.branch || ""),
        approvalCard(p.run.id, p.approval, load))));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => clearInterval(timer);
}
