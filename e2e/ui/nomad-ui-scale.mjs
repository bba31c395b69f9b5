// Scales an app's process type by one dyno from the Nomad web UI's count stepper, in
// Debian's headless Chromium, saves a screenshot once the UI lists the new dyno's
// allocation as running, and prints what it saw as JSON.
//
//   NOMAD_TOKEN=... node nomad-ui-scale.mjs <nomad http address> <app> <process> <screenshot.png>
//
// The UI signs in with $NOMAD_TOKEN, the app's own deploy token: the stepper is enabled
// only for a token that may scale the app's job.
import { chromium } from "playwright-core";

const [nomad, app, group, shot] = process.argv.slice(2);
if (!nomad || !app || !group || !shot) {
  console.error("usage: node nomad-ui-scale.mjs NOMAD_ADDR APP PROCESS SCREENSHOT");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const seen = {};

// allocationLinks counts the distinct allocations the page links to.
async function allocationLinks(page) {
  return page.locator('a[href^="/ui/allocations/"]').evaluateAll(
    (as) => new Set(as.map((a) => a.getAttribute("href").split("/")[3])).size);
}

try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(40000);
  await page.addInitScript((token) => window.localStorage.setItem("nomadTokenSecret", token),
    process.env.NOMAD_TOKEN || "");

  // The task group page shows the count stepper, bounded by the group's min and max.
  // On a loaded machine the UI's first load can miss its data; a reload fetches it again.
  const stepper = page.locator("input.stepper-input-input");
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(`${nomad}/ui/jobs/${app}@${app}/${group}`);
      await stepper.waitFor();
      break;
    } catch (e) {
      if (attempt >= 3) throw e;
      console.error(`task group page: no stepper yet (${e.message.split("\n")[0]}); reloading`);
    }
  }
  seen.before = Number(await stepper.inputValue());
  seen.min = Number(await stepper.getAttribute("min"));
  seen.max = Number(await stepper.getAttribute("max"));
  seen.allocationsBefore = await allocationLinks(page);

  // One click on the increment: after its debounce, the UI calls Nomad's job scale API.
  const increment = page.getByRole("button", { name: "increment" });
  const scaled = page.waitForResponse((r) =>
    r.request().method() === "POST" && new URL(r.url()).pathname === `/v1/job/${app}/scale`);
  await increment.click(); // waits until the stepper is enabled
  const resp = await scaled;
  seen.scaleStatus = resp.status();
  seen.after = Number(await stepper.inputValue());

  // The page lists the new dyno's allocation, running.
  await page.waitForFunction((before) => new Set(
    [...document.querySelectorAll('a[href^="/ui/allocations/"]')].map((a) => a.getAttribute("href").split("/")[3]),
  ).size > before, seen.allocationsBefore, { timeout: 60000 });
  seen.allocationsAfter = await allocationLinks(page);
  await page.waitForFunction((n) => [...document.querySelectorAll("td")]
    .filter((td) => td.textContent.trim() === "running").length >= n, seen.after, { timeout: 60000 });
  seen.running = seen.after;
  await page.screenshot({ path: shot, fullPage: true });
  seen.screenshot = shot;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
