import { get, post, can, session, APIError } from "../api.js";
import { h, link, status, when, short, kv, toast, digestLink } from "../dom.js";

const svgNS = "http://www.w3.org/2000/svg";

const items = (x) => (Array.isArray(x) ? x : (x && x.items) || []);

export async function environmentsView(main) {
  const tbody = h("tbody");
  main.append(h("h1", {}, "Environments"),
    h("table", { id: "environments" }, h("thead", {}, h("tr", {}, ["Name", "URL", "Revision", "Digest", "Ready"].map((c) => h("th", {}, c)))), tbody));
  async function load() {
    const envs = items(await get("/api/v1/environments"));
    tbody.replaceChildren(...(envs.length ? envs.map((e) => {
      const inst = e.instances || [];
      return h("tr", { "data-env": e.name },
        h("td", {}, link("/environments/" + encodeURIComponent(e.name), e.name)),
        h("td", { class: "mono" }, e.url),
        h("td", {}, e.current ? e.current.number : ""),
        h("td", { class: "mono" }, e.current ? digestLink(e.current.digest, short(e.current.digest)) : ""),
        h("td", {}, inst.filter((i) => i.state === "ready").length + "/" + inst.length));
    }) : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No environments."))]));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => clearInterval(timer);
}

// environmentView shows an environment's revisions and, when it rolls out
// blue/green, the rollout: which side is active, the phase, each analysis
// measurement against its threshold, and the verbs for the roles that may
// use them.
export async function environmentView(main, [name]) {
  const env = decodeURIComponent(name);
  const base = "/api/v1/environments/" + encodeURIComponent(env);
  const head = h("div", { class: "card", id: "env-head" });
  const rollout = h("div", { id: "rollout" });
  const revisions = h("div", { id: "revisions" });
  main.append(h("h1", {}, "Environment " + env), head, rollout, revisions);

  async function load() {
    const [st, revs, ro] = await Promise.all([
      get(base),
      get(base + "/revisions"),
      get(base + "/rollout").catch((e) => {
        if (e instanceof APIError && (e.status === 404 || e.status === 501)) return null;
        throw e;
      }),
    ]);
    head.replaceChildren(kv([["URL", st.url], ["Current revision", st.current ? String(st.current.number) : ""],
      ["Digest", st.current ? digestLink(st.current.digest) : ""], ["Prometheus", st.prometheusURL]]),
    instancesTable(st.instances || []));
    renderRollout(ro);
    renderRevisions(items(revs));
  }

  function renderRollout(ro) {
    if (!ro) {
      rollout.replaceChildren();
      return;
    }
    // Green takes the active URL at promotion; an abort leaves it on blue.
    const greenActive = ["postPromotion", "scaleDown", "completed"].includes(ro.step);
    const side = (label, rev, active, url) =>
      h("div", { class: "side" + (active ? " active" : ""), "data-side": label.toLowerCase(), "data-active": String(active), "data-revision": rev },
        h("strong", {}, label + (active ? " (active)" : "")), h("div", {}, "revision " + (rev || "–")), url ? h("div", { class: "mono" }, url) : null);
    const sides = ro.stable !== ro.desired
      ? [side("Blue", ro.stable, !greenActive, greenActive ? "" : ro.activeURL), side("Green", ro.desired, greenActive, greenActive ? ro.activeURL : ro.previewURL)]
      : [side("Active", ro.desired, true, ro.activeURL)];
    const verbs = can("oncall-lead")
      ? h("div", { class: "actions", id: "rollout-actions" },
        verb("Promote", "promote", {}, "primary", ro.phase === "Paused" || ro.phase === "Progressing"),
        verb("Promote fully", "promote", { full: true }, "", ro.phase === "Paused" || ro.phase === "Progressing"),
        verb("Abort", "abort", { reason: "aborted from the UI" }, "danger", ro.phase !== "Healthy"),
        verb("Retry", "retry", {}, "", ro.phase === "Degraded"),
        verb("Undo", "undo", {}, "", ro.phase === "Healthy"))
      : h("p", { class: "muted" }, "Your role may not operate rollouts.");
    rollout.replaceChildren(
      h("h2", {}, "Blue/green rollout"),
      h("div", { class: "card" },
        h("div", { class: "actions" }, status(ro.phase), h("span", { class: "mono" }, ro.step), ro.message ? h("span", {}, ro.message) : null),
        h("div", { class: "bluegreen", id: "bluegreen" }, sides),
        kv([["Digest", digestLink(ro.digest)], ["Promoted by", ro.promotedBy], ["Aborted by", ro.abortedBy],
          ["Paused until", ro.pauseUntil ? when(ro.pauseUntil) : ""], ["Blue scaled down at", ro.scaleDownAt ? when(ro.scaleDownAt) : ""]]),
        verbs),
      ...(ro.analyses || []).map(analysisCard),
      monitorsTable(ro.monitors || []),
    );
  }

  function verb(label, path, body, cls, enabled) {
    return h("button", {
      type: "button", class: cls, "data-verb": path + (body.full ? "-full" : ""), disabled: !enabled,
      onclick: async () => {
        try {
          await post(base + "/" + path, { who: session.user, ...body });
          toast(label + ": done");
          await load();
        } catch (e) {
          toast(e.message, true);
        }
      },
    }, label);
  }

  function renderRevisions(revs) {
    revisions.replaceChildren(h("h2", {}, "Revisions"),
      h("table", {}, h("thead", {}, h("tr", {}, ["#", "Status", "Digest", "Run", "Who", "When", "Reason"].map((c) => h("th", {}, c)))),
        h("tbody", {}, revs.map((r) => h("tr", { "data-revision": r.number },
          h("td", {}, r.number), h("td", {}, status(r.status)), h("td", { class: "mono" }, digestLink(r.digest, short(r.digest))),
          h("td", {}, r.run ? link("/runs/" + r.run, "#" + r.run) : ""), h("td", {}, r.who), h("td", {}, when(r.created)),
          h("td", {}, r.reason || r.message || ""))))));
  }

  await load();
  const timer = setInterval(() => load().catch(() => {}), 2000);
  return () => clearInterval(timer);
}

function instancesTable(inst) {
  if (!inst.length) return null;
  const cols = ["id", "revision", "state", "addr", "restarts"];
  return h("table", { class: "instances" }, h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, c)))),
    h("tbody", {}, inst.map((i) => h("tr", {}, cols.map((c) => h("td", { class: c === "addr" ? "mono" : "" }, c === "state" ? status(i[c]) : i[c] ?? ""))))));
}

function analysisCard(a) {
  return h("div", { class: "card analysis", "data-analysis": a.kind },
    h("div", { class: "actions" }, h("strong", {}, a.kind + " analysis"), "revision " + a.revision, status(a.phase)),
    (a.runs || []).map((run) => h("div", {},
      h("div", { class: "muted" }, "template " + run.template + " — " + (run.message || run.phase)),
      (run.metricResults || []).map((m) => h("div", { class: "metric", "data-metric": m.name },
        h("div", {}, h("strong", {}, m.name), " ", status(m.phase), " ",
          h("span", { class: "muted" }, m.successful + " passed, " + m.failed + " failed of " + m.count),
          m.successCondition ? h("span", { class: "mono muted" }, "  success: " + m.successCondition) : null,
          m.failureCondition ? h("span", { class: "mono muted" }, "  failure: " + m.failureCondition) : null),
        chart(m))))));
}

// chart draws each measurement's value as a bar, coloured by its phase,
// with the success condition's threshold as a dashed line when the
// condition compares the result with a number.
function chart(m) {
  const ms = (m.measurements || []).map((x) => ({ phase: x.phase, v: number(x.value), label: (x.value || x.message || "") + " (" + x.phase + ")" }));
  const threshold = thresholdOf(m.successCondition) ?? thresholdOf(m.failureCondition);
  const values = ms.map((x) => x.v).filter((v) => v !== null);
  if (!ms.length) return h("div", { class: "muted" }, "no measurement yet");
  const top = Math.max(...values, threshold ?? 0, 1e-9) * 1.15;
  const W = 520, H = 120, pad = 4;
  const bw = Math.max(4, Math.min(40, (W - pad * 2) / Math.max(ms.length, 10) - 4));
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", m.name + " measurements");
  ms.forEach((x, i) => {
    const v = x.v ?? 0;
    const bh = x.v === null ? 4 : Math.max(2, (v / top) * (H - pad * 2));
    const r = document.createElementNS(svgNS, "rect");
    r.setAttribute("x", pad + i * (bw + 4));
    r.setAttribute("y", H - pad - bh);
    r.setAttribute("width", bw);
    r.setAttribute("height", bh);
    r.setAttribute("class", x.phase === "Successful" ? "ok" : x.phase === "Failed" || x.phase === "Error" ? "bad" : "other");
    const t = document.createElementNS(svgNS, "title");
    t.textContent = x.label;
    r.append(t);
    svg.append(r);
  });
  if (threshold !== null) {
    const y = H - pad - (threshold / top) * (H - pad * 2);
    const l = document.createElementNS(svgNS, "line");
    l.setAttribute("x1", 0);
    l.setAttribute("x2", W);
    l.setAttribute("y1", y);
    l.setAttribute("y2", y);
    l.setAttribute("class", "threshold");
    const t = document.createElementNS(svgNS, "title");
    t.textContent = "threshold " + threshold;
    l.append(t);
    svg.append(l);
  }
  return svg;
}

// number reads a measurement's value: a number, or Argo's "[0.12]".
function number(v) {
  if (v === undefined || v === null) return null;
  const m = String(v).match(/-?\d+(\.\d+)?([eE][-+]?\d+)?/);
  return m ? parseFloat(m[0]) : null;
}

// thresholdOf reads N from a condition such as "result[0] < 0.25" or
// "result <= 0.001"; null when the condition is of another shape.
function thresholdOf(cond) {
  if (!cond) return null;
  const m = cond.match(/^\s*result(\[0\])?\s*[<>]=?\s*(-?\d+(\.\d+)?([eE][-+]?\d+)?)\s*$/);
  return m ? parseFloat(m[2]) : null;
}

function monitorsTable(ms) {
  if (!ms.length) return null;
  return h("div", {}, h("h2", {}, "Synthetic monitors"),
    h("table", { id: "monitors" }, h("thead", {}, h("tr", {}, ["Monitor", "Location", "Result", "Status", "Latency", "When", "Message"].map((c) => h("th", {}, c)))),
      h("tbody", {}, ms.map((r) => h("tr", {}, h("td", {}, r.monitor), h("td", {}, r.location), h("td", {}, status(r.ok ? "passed" : "failed")),
        h("td", {}, r.status || ""), h("td", {}, r.latency ? (r.latency / 1e6).toFixed(1) + " ms" : ""), h("td", {}, when(r.at)), h("td", {}, r.message || ""))))));
}
