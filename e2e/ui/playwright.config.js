// Playwright runs the UI specs in Debian's Chromium (no browser download):
// CHROMIUM names another binary. e2e/ui_test.go starts gantry serve with
// users and runs, and passes them in GANTRY_UI_FIXTURE (a JSON file).
import { defineConfig } from "@playwright/test";
import { readFileSync } from "node:fs";

const fixture = JSON.parse(readFileSync(process.env.GANTRY_UI_FIXTURE, "utf8"));

export default defineConfig({
  testDir: "tests",
  timeout: 120_000,
  expect: { timeout: 60_000 },
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: process.env.GANTRY_UI_OUTPUT || "test-results",
  use: {
    baseURL: fixture.url,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    },
  },
});
