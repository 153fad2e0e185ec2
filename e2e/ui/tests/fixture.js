// The fixture e2e/ui_test.go wrote: the server's URL, its users, the runs
// it prepared and a webhook delivery to send.
import { readFileSync } from "node:fs";
import { createHmac } from "node:crypto";
import { expect } from "@playwright/test";

export const fixture = JSON.parse(readFileSync(process.env.GANTRY_UI_FIXTURE, "utf8"));

// login logs the page's browser context in through the login form.
export async function login(page, who) {
  const u = fixture.users[who];
  await page.goto("/login");
  await page.locator("#user").fill(u.name);
  await page.locator("#password").fill(u.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.locator("#who-name")).toHaveText(u.name);
  await expect(page.locator("#who-role")).toHaveText(u.role);
}

// deliver sends the fixture's webhook delivery, signed as GitHub signs.
export async function deliver(request, delivery) {
  const sig = "sha256=" + createHmac("sha256", fixture.webhook.secret).update(fixture.webhook.body).digest("hex");
  return request.post(fixture.webhook.path, {
    data: fixture.webhook.body,
    headers: {
      "Content-Type": "application/json",
      "X-GitHub-Event": fixture.webhook.event,
      "X-GitHub-Delivery": delivery,
      "X-Hub-Signature-256": sig,
    },
  });
}
