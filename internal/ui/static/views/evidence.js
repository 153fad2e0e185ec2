import { get } from "../api.js";
import { h, kv, link, status, when } from "../dom.js";

// evidenceView shows the evidence of an image digest: what the server
// finds in the registry now (the signature checked against the keys it
// trusts, the gate verdicts attested with that key) and, for each run
// that signed the digest, what that run recorded (its key, attestations,
// verdicts and approvals). The registry's account comes first: it is the
// one admission checks.
export async function evidenceView(main, [digest]) {
  const p = await get("/api/v1/evidence/" + encodeURIComponent(digest));
  main.append(h("h1", {}, "Evidence"), kv([["Digest", h("span", { class: "mono" }, digest)]]));
  if (!p.items.length) {
    main.append(h("p", { class: "muted", id: "no-evidence" }, "No recorded run signed this digest."));
    return;
  }
  const images = new Map();
  for (const s of p.items) if (!images.has(s.image)) images.set(s.image, s);
  for (const s of images.values()) main.append(registryCard(s));
  main.append(h("h2", {}, "Recorded by the runs"));
  for (const s of p.items) main.append(recordCard(s));
}

// registryCard is the server's check of one image.
function registryCard(s) {
  const c = s.check;
  const card = h("div", { class: "card", "data-check": s.image });
  if (!c) {
    card.append(h("div", { class: "actions" }, h("strong", {}, "Registry"), status("unknown")),
      kv([["Image", s.image]]), h("p", { class: "muted", "data-check-error": true }, "Not checked: " + (s.check_error || "no answer")));
    return card;
  }
  card.append(h("div", { class: "actions" }, h("strong", {}, "Registry"),
    h("span", { class: "status " + (c.verified ? "passed" : "failed"), "data-verified": String(c.verified) },
      c.verified ? "signature verified" : "signature NOT verified")),
  kv([["Image", c.image], ["Key", c.verified ? c.key + " (" + c.key_id.slice(0, 16) + ")" : ""],
    ["Failure", c.failure], ["Reason", c.error]]));
  if (c.verified) {
    card.append(h("table", { class: "evidence", "data-gates": true },
      h("thead", {}, h("tr", {}, ["Gate", "Verdict", "Run", "Time"].map((x) => h("th", {}, x)))),
      h("tbody", {}, c.gates.length
        ? c.gates.map((g) => h("tr", { "data-gate": g.gate }, h("td", { class: "mono" }, g.gate), h("td", {}, status(verdictStatus(g.verdict))),
          h("td", {}, g.run_id ? link("/runs/" + encodeURIComponent(g.run_id), "#" + g.run_id) : ""), h("td", {}, when(g.time))))
        : h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No gate attested with this key.")))));
    for (const r of c.rejected || []) {
      card.append(h("p", { class: "error", "data-rejected": r.gate }, r.gate + ": attestation rejected: " + r.reason));
    }
  }
  return card;
}

// recordCard is what one run's sign step recorded.
function recordCard(s) {
  const verdicts = Object.entries(s.evidence || {}).sort(([a], [b]) => a.localeCompare(b));
  return h("div", { class: "card", "data-record": s.run.id },
    h("div", { class: "actions" }, link("/runs/" + s.run.id, "Run #" + s.run.id), h("span", { class: "muted" }, s.stage + " / " + s.step),
      s.signed ? h("span", { class: "muted" }, "signed " + when(s.signed)) : null),
    kv([["Branch", s.run.branch], ["Commit", (s.run.sha || "").slice(0, 12)], ["Key (as recorded)", s.key], ["Key ID", s.key_id],
      ["Signature", s.signature], ["Attestations", (s.attestations || []).join(", ")]]),
    verdicts.length ? h("table", { class: "evidence" },
      h("thead", {}, h("tr", {}, ["Gate", "Verdict (as recorded)"].map((x) => h("th", {}, x)))),
      h("tbody", {}, verdicts.map(([g, v]) => h("tr", {}, h("td", { class: "mono" }, g), h("td", {}, status(verdictStatus(v))))))) : null,
    (s.approvals || []).length ? kv([["Approved by", s.approvals.map((a) => a.actor + " (" + a.stage + ")").join(", ")]]) : null);
}

function verdictStatus(v) {
  return v === "pass" ? "passed" : v === "fail" ? "failed" : v;
}
