import { test, expect } from "@playwright/test";
import { randomUUID } from "node:crypto";
import { fixture, login, deliver } from "./fixture.js";

test("a wrong password is refused and the right one logs in", async ({ page }) => {
  await page.goto("/runs");
  await expect(page).toHaveURL(/\/login/);
  await page.locator("#user").fill(fixture.users.viewer.name);
  await page.locator("#password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.locator("#login-error")).not.toBeEmpty();
  await login(page, "viewer");
  await expect(page.locator("#runs")).toBeVisible();
});

test("a run triggered by a signed webhook shows up and goes green without a reload", async ({ page }) => {
  await login(page, "developer");
  await page.goto("/runs");
  await expect(page.locator("#runs tbody tr").first()).toBeVisible();
  const before = await page.locator("#runs tbody tr[data-run]").evaluateAll((rows) => rows.map((r) => Number(r.dataset.run)));
  const resp = await deliver(page.request, randomUUID());
  expect(resp.status(), await resp.text()).toBeLessThan(300);
  // The page refreshes itself: no reload, no navigation.
  const newest = page.locator("#runs tbody tr[data-run]").first();
  await expect.poll(async () => Number(await newest.getAttribute("data-run"))).toBeGreaterThan(Math.max(0, ...before));
  const id = await newest.getAttribute("data-run");
  const row = page.locator(`#runs tbody tr[data-run="${id}"]`);
  await expect(row.locator(".status")).toHaveAttribute("data-status", /running|passed/);
  await row.getByRole("link").click();
  await expect(page).toHaveURL(new RegExp(`/runs/${id}`));
  await expect(page.locator("#run-head .status").first()).toHaveAttribute("data-status", "passed", { timeout: 120_000 });
  for (const st of await page.locator(".stage").all()) {
    await expect(st.locator(".head .status")).toHaveAttribute("data-status", /passed|skipped|cached/);
  }
});

test("a failed step's log opens and can be searched", async ({ page }) => {
  const f = fixture.runs.failed;
  await login(page, "viewer");
  await page.goto(`/runs/${f.id}`);
  await expect(page.locator("#run-head .status").first()).toHaveAttribute("data-status", "failed");
  // The failed step is opened first.
  await expect(page.locator(`.stage[data-stage="${f.stage}"] .step[data-step="${f.step}"]`)).toHaveClass(/selected/);
  await expect(page.locator("#log")).toContainText(f.logText);
  await page.locator("#log-search").fill(f.logText);
  await expect(page.locator("#log .line.hit").first()).toBeVisible();
  await expect(page.locator("#log-state")).toContainText("matching lines");
  // What the run's steps reported: its go-test step's results and coverage.
  const tests = page.locator('#reports [data-report="tests"]');
  await expect(tests).toContainText("1 test, 0 failed");
  await expect(page.locator('#reports [data-report="coverage"]')).toContainText("%");
});

test("a viewer cannot approve: no button, and the API refuses", async ({ page }) => {
  const w = fixture.runs.waiting;
  await login(page, "viewer");
  await page.goto(`/runs/${w.id}`);
  const card = page.locator(`[data-approval="${w.stage}"][data-pending]`);
  await expect(card).toBeVisible();
  await expect(card.locator('[data-action="approve"]')).toHaveCount(0);
  await expect(card).toContainText("Your role may not decide approvals.");
  const s = await (await page.request.get("/auth/session")).json();
  const resp = await page.request.post(`/api/v1/runs/${w.id}/approvals/${w.stage}`, {
    data: { decision: "approve" },
    headers: { "X-CSRF-Token": s.csrfToken, Origin: fixture.url },
  });
  expect(resp.status()).toBe(403);
});

test("the evidence of the waiting digest: its signature and gates checked by the server", async ({ page }) => {
  const w = fixture.runs.waiting;
  await login(page, "viewer");
  await page.goto(`/runs/${w.id}`);
  await page.locator(`[data-approval="${w.stage}"] [data-evidence="${w.digest}"]`).click();
  await expect(page).toHaveURL(new RegExp(`/evidence/${w.digest}$`));
  const check = page.locator("[data-check]").first();
  await expect(check.locator("[data-verified]")).toHaveAttribute("data-verified", "true");
  await expect(check.locator('[data-gate="tests"] .status')).toHaveAttribute("data-status", "passed");
  await expect(page.locator(`[data-record="${w.id}"]`)).toContainText("check / sign");
});

test("the on-call lead approves a waiting promotion and promotes its rollout from blue to green", async ({ page }) => {
  const w = fixture.runs.waiting;
  await login(page, "lead");
  await page.goto("/approvals");
  const card = page.locator(`[data-approval="${w.stage}"][data-pending]`).first();
  await expect(card).toBeVisible();
  await expect(card).toContainText(w.digest);
  await card.locator(".comment").fill("looks good");
  await card.locator('[data-action="approve"]').click();
  await expect(page.locator("#toast")).toContainText("Approved");

  // The run resumes on the server: green starts beside blue and the
  // rollout pauses for the manual promotion.
  await page.goto(`/environments/${w.environment}`);
  await expect(page.locator("#rollout .status").first()).toHaveAttribute("data-status", "Paused", { timeout: 120_000 });
  await expect(page.locator('#bluegreen [data-side="blue"]')).toHaveAttribute("data-active", "true");
  await expect(page.locator('#bluegreen [data-side="green"]')).toHaveAttribute("data-active", "false");
  await page.locator('[data-verb="promote"]').click();
  await expect(page.locator("#toast")).toContainText("Promote: done");
  // The active URL switches to green's revision.
  await expect(page.locator('#bluegreen [data-active="true"]')).toHaveAttribute("data-revision", String(w.revision));
  await expect(page.locator("#rollout .status").first()).toHaveAttribute("data-status", "Healthy", { timeout: 60_000 });

  await page.goto(`/runs/${w.id}`);
  await expect(page.locator(`[data-approval="${w.stage}"] .status`)).toHaveAttribute("data-status", "approved");
  await expect(page.locator("#run-head .status").first()).toHaveAttribute("data-status", "passed", { timeout: 60_000 });
});
