import { get, post, follow, can, q } from "../api.js";
import { h, link, status, duration, when, kv, short, toast, digestLink } from "../dom.js";

const live = new Set(["running", "waiting", "pending"]);

// runView shows a run's stages and steps as a graph that updates while the
// run progresses, its pending approval with the evidence to decide on, and
// the selected step's log, followed live while the step runs.
export async function runView(main, [id], params) {
  const graph = h("div", { class: "graph", id: "graph" });
  const head = h("div", { class: "card", id: "run-head" });
  const approvals = h("div", { id: "approvals" });
  const logPanel = h("div", { id: "log-panel" });
  const artifacts = h("div", { id: "artifacts" });
  const reports = h("div", { id: "reports" });
  main.append(h("h1", {}, "Run #" + id), head, approvals, graph, reports, logPanel, artifacts);

  let run = null;
  let selected = params.get("stage") && params.get("step") ? { stage: params.get("stage"), step: params.get("step") } : null;
  let closeLog = null;
  let logKey = "";
  let reportsFor = "";

  async function load() {
    run = await get("/api/v1/runs/" + id);
    if (!selected) selected = firstInteresting(run);
    renderHead();
    renderGraph();
    renderApprovals();
    renderArtifacts();
    // The reports are read again only when the run's status changes.
    if (run.status !== reportsFor) {
      reportsFor = run.status;
      renderReports(reports, id).catch((e) => reports.replaceChildren(h("p", { class: "error" }, "reports: " + e.message)));
    }
    if (selected) openLog(selected);
  }

  function renderHead() {
    head.replaceChildren(
      h("div", { class: "actions" }, status(run.status), h("strong", {}, run.pipeline), h("span", { class: "muted" }, when(run.started)),
        run.duration_seconds ? h("span", { class: "muted" }, duration(run.duration_seconds)) : null),
      kv([["Branch", run.branch], ["Commit", run.sha], ["Message", run.message], ["Event", run.event], ["Trigger", run.trigger]]),
    );
  }

  function renderGraph() {
    graph.replaceChildren(...run.stages.map((st) =>
      h("section", { class: "stage", "data-stage": st.name },
        h("div", { class: "head" }, h("span", {}, st.name), status(st.status)),
        st.gate ? h("div", { class: "gate mono", title: "gate" }, (st.gate_passed === false ? "✗ " : st.gate_passed ? "✓ " : "") + st.gate) : null,
        st.message ? h("div", { class: "gate" }, st.message) : null,
        st.steps.map((sp) =>
          h("div", {
            class: "step " + sp.status + (selected && selected.stage === st.name && selected.step === sp.name ? " selected" : ""),
            "data-step": sp.name, role: "button", tabindex: 0, title: sp.summary || sp.message || "",
            onclick: () => select(st.name, sp.name),
            onkeydown: (ev) => ev.key === "Enter" && select(st.name, sp.name),
          }, h("span", {}, sp.name), h("span", { class: "dur" }, sp.status === "running" ? "running" : duration(sp.duration_seconds)))))));
  }

  function select(stage, step) {
    selected = { stage, step };
    history.replaceState(null, "", "/runs/" + id + q({ stage, step }));
    renderGraph();
    openLog(selected);
  }

  function stepOf(sel) {
    const st = run.stages.find((s) => s.name === sel.stage);
    return st && st.steps.find((s) => s.name === sel.step);
  }

  // openLog shows the step's log: what is stored, then the rest live.
  function openLog(sel) {
    const key = sel.stage + "\u0000" + sel.step;
    if (key === logKey) return;
    logKey = key;
    if (closeLog) closeLog();
    const sp = stepOf(sel);
    const lines = h("div", { class: "log mono", id: "log" });
    const search = h("input", { id: "log-search", type: "search", placeholder: "Search the log", oninput: () => filter() });
    const onlyHits = h("input", { type: "checkbox", id: "log-only", onchange: () => filter() });
    const state = h("span", { class: "muted", id: "log-state" }, "loading…");
    const info = sp ? [sp.summary ? h("div", {}, sp.summary) : null, sp.message ? h("div", { class: "error" }, sp.message) : null, outputs(sp.outputs)] : [];
    logPanel.replaceChildren(
      h("h2", {}, "Log of " + sel.stage + " / " + sel.step),
      ...info,
      h("div", { class: "filters" }, h("label", {}, "Search", search), h("label", {}, "Only matches", onlyHits), state),
      lines,
    );
    function filter() {
      const needle = search.value.toLowerCase();
      let hits = 0;
      for (const el of lines.children) {
        const hit = needle !== "" && el.dataset.text.includes(needle);
        if (hit) hits++;
        el.classList.toggle("hit", hit);
        el.hidden = onlyHits.checked && needle !== "" && !hit;
      }
      if (needle) state.textContent = hits + " matching lines";
    }
    const add = (l) => {
      const el = h("div", { class: "line " + (l.stream || "") }, h("span", { class: "n" }, l.seq), h("span", {}, l.text));
      el.dataset.text = l.text.toLowerCase();
      const stick = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 4;
      lines.append(el);
      const needle = search.value.toLowerCase();
      if (needle) {
        const hit = el.dataset.text.includes(needle);
        el.classList.toggle("hit", hit);
        el.hidden = onlyHits.checked && !hit;
      }
      if (stick) lines.scrollTop = lines.scrollHeight;
    };
    closeLog = follow("/api/v1/runs/" + id + "/logs/stream" + q({ stage: sel.stage, step: sel.step }), add, (end) => {
      state.textContent = end.error ? "log: " + end.error.message : "ended: " + (end.status || "");
      filter();
    });
    state.textContent = sp && live.has(sp.status) ? "following" : "";
  }

  function renderApprovals() {
    const pend = (run.approvals || []).filter((a) => a.status === "pending");
    const done = (run.approvals || []).filter((a) => a.status !== "pending");
    approvals.replaceChildren(
      ...pend.map((a) => approvalCard(id, a, load)),
      ...done.map((a) => h("div", { class: "card", "data-approval": a.stage },
        h("div", { class: "actions" }, h("strong", {}, "Approval of " + a.stage), status(a.status), a.actor ? "by " + a.actor : "", when(a.decided)),
        a.comment ? h("div", {}, a.comment) : null)),
    );
  }

  async function renderArtifacts() {
    const all = [];
    for (const st of run.stages) for (const sp of st.steps) for (const a of sp.artifacts || []) all.push({ ...a, stage: st.name, step: sp.name });
    if (!all.length) {
      artifacts.replaceChildren();
      return;
    }
    artifacts.replaceChildren(
      h("h2", {}, "Artifacts"),
      h("table", {}, h("thead", {}, h("tr", {}, ["Step", "Name", "Type", "Size", "Digest"].map((c) => h("th", {}, c)))),
        h("tbody", {}, all.map((a) => h("tr", {},
          h("td", {}, a.stage + " / " + a.step),
          h("td", {}, h("a", { href: "/api/v1/runs/" + id + "/artifacts/" + a.digest, download: a.name }, a.name)),
          h("td", { class: "muted" }, a.media_type),
          h("td", {}, a.size),
          h("td", { class: "mono" }, short(a.digest)))))));
  }

  await load();
  const timer = setInterval(async () => {
    if (!run || !live.has(run.status)) return;
    try {
      await load();
    } catch (e) {
      toast(e.message, true);
    }
  }, 2000);
  return () => {
    clearInterval(timer);
    if (closeLog) closeLog();
  };
}

// approvalCard shows a pending approval with what the approver decides
// on (digest and evidence) and, for the roles that may decide, the
// approve and reject buttons.
export function approvalCard(runID, a, reload) {
  const comment = h("input", { name: "comment", class: "comment", placeholder: "comment (a rejection needs a reason)", size: 40 });
  const decide = async (decision) => {
    try {
      const res = await post("/api/v1/runs/" + runID + "/approvals/" + encodeURIComponent(a.stage), { decision, comment: comment.value });
      toast(decision === "approve" ? (res.resumed ? "Approved: the run resumes." : "Approved.") : "Rejected.");
      await reload();
    } catch (e) {
      toast(e.message, true);
    }
  };
  const mayDecide = can("oncall-lead");
  return h("div", { class: "card", "data-approval": a.stage, "data-pending": true },
    h("div", { class: "actions" }, h("strong", {}, "Waiting for approval: " + a.stage), status("pending"),
      a.roles && a.roles.length ? h("span", { class: "muted" }, "roles: " + a.roles.join(", ")) : null,
      a.deadline ? h("span", { class: "muted" }, "until " + when(a.deadline)) : null),
    kv([["Image", digestLink(a.digest)]]),
    evidence(a.evidence),
    mayDecide
      ? h("div", { class: "actions" }, comment,
        h("button", { class: "primary", type: "button", "data-action": "approve", onclick: () => decide("approve") }, "Approve"),
        h("button", { class: "danger", type: "button", "data-action": "reject", onclick: () => decide("reject") }, "Reject"))
      : h("p", { class: "muted" }, "Your role may not decide approvals."));
}

function evidence(verdicts) {
  if (!verdicts || !verdicts.length) return null;
  return h("table", { class: "evidence" },
    h("thead", {}, h("tr", {}, ["Stage", "Verdict", "Gate", "Steps"].map((c) => h("th", {}, c)))),
    h("tbody", {}, verdicts.map((v) => h("tr", {},
      h("td", {}, v.stage), h("td", {}, status(v.status)),
      h("td", { class: "mono" }, v.gate ? (v.gate_passed ? "✓ " : "✗ ") + v.gate : ""),
      h("td", {}, (v.steps || []).map((s) => h("div", {}, s.name + ": " + s.status + (s.summary ? " — " + s.summary : ""))))))));
}

function outputs(o) {
  if (!o || !Object.keys(o).length) return null;
  return h("details", { class: "card" }, h("summary", {}, "Outputs"),
    kv(Object.entries(o).map(([k, v]) => [k, k === "digest" ? digestLink(v) : typeof v === "string" ? v : JSON.stringify(v)])));
}

// firstInteresting picks the step to show first: a failed one, else a
// running one, else none.
function firstInteresting(run) {
  for (const want of ["failed", "running"]) {
    for (const st of run.stages) for (const sp of st.steps) if (sp.status === want) return { stage: st.name, step: sp.name };
  }
  return null;
}

// renderReports shows what the run's steps reported: test results,
// coverage, vulnerability findings with their exceptions, SBOM components
// and licences, and SARIF findings; each section only when there is
// something in it.
async function renderReports(el, id) {
  const base = "/api/v1/runs/" + id + "/";
  const [tests, coverage, vulns, sbom, sarif] = await Promise.all(
    ["tests", "coverage", "vulnerabilities", "sbom", "sarif"].map((r) => get(base + r).then((p) => p.items)));
  const sections = [];
  if (tests.length) {
    const failed = tests.flatMap((t) => t.failed || []);
    const n = tests.map((t) => t.tests).reduce((a, b) => a + b, 0);
    sections.push(section("tests", "Tests", n + (n === 1 ? " test, " : " tests, ") + failed.length + " failed",
      table(["Step", "Tests", "Failures", "Errors", "Skipped", "Time"], tests.map((t) =>
        [t.stage + " / " + t.step, t.tests, t.failures, t.errors, t.skipped, duration(t.time_seconds)])),
      failed.length ? table(["Suite", "Test", "Message"], failed.map((f) => [f.suite, f.name, f.message || ""])) : null, failed.length > 0));
  }
  if (coverage.length) {
    sections.push(section("coverage", "Coverage", coverage.map((c) => c.coverage.toFixed(1) + " %").join(", "),
      table(["Step", "Coverage"], coverage.map((c) => [c.stage + " / " + c.step, c.coverage.toFixed(1) + " %"]))));
  }
  if (vulns.length) {
    const failing = vulns.filter((v) => v.finding.fails).length;
    sections.push(section("vulnerabilities", "Vulnerabilities", vulns.length + " findings, " + failing + " failing the gate",
      table(["Finding", "Package", "Severity", "Fixed in", "Verdict", "Exception"], vulns.map((v) => {
        const f = v.finding;
        const ex = f.exception;
        return [f.id, f.package + " " + f.version, f.severity.level + (f.severity.score ? " " + f.severity.score : ""), f.fixed || "",
          status(f.fails ? "failed" : f.status || "passed"),
          ex ? ex.owner + ", until " + ex.expires + ": " + ex.justification : ""];
      })), null, failing > 0));
  }
  if (sbom.length) {
    const licences = new Set(sbom.flatMap((c) => c.licenses));
    sections.push(section("sbom", "SBOM", sbom.length + " components, " + licences.size + " licences",
      table(["Component", "Version", "Type", "Licences"], sbom.map((c) => [c.name, c.version || "", c.type, c.licenses.join(", ")]))));
  }
  if (sarif.length) {
    sections.push(section("sarif", "Findings (SARIF)", sarif.length + " results",
      table(["Tool", "Rule", "Level", "Where", "Message"], sarif.map((r) => [r.tool, r.rule, r.level, r.file ? r.file + (r.line ? ":" + r.line : "") : "", r.message]))));
  }
  el.replaceChildren(...(sections.length ? [h("h2", {}, "Reports"), ...sections] : []));
}

function section(key, title, summary, body, extra, open) {
  return h("details", { class: "card report", "data-report": key, open: !!open },
    h("summary", {}, h("strong", {}, title), " ", h("span", { class: "muted" }, summary)), body, extra);
}

function table(cols, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}
