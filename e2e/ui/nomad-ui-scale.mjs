// Scales an app's process type by one dyno from the Nomad web UI's count stepper, in
// Debian's headless Chromium, saves a screenshot once the UI lists the new dyno's
// allocation as running, and prints what it saw as JSON.
//
//   NOMAD_TOKEN=... node nomad-ui-scale.mjs <nomad http address> <app> <process> <screenshot.png>
//
// The UI signs in with $NOMAD_TOKEN, the app's own deploy token: the stepper is enabled
// only for a token that may scale the app's job.
import { allocationIDs, open, signedIn } from "./session.mjs";

const [nomad, app, group, shot] = process.argv.slice(2);
if (!nomad || !app || !group || !shot) {
  console.error("usage: node nomad-ui-scale.mjs NOMAD_ADDR APP PROCESS SCREENSHOT");
  process.exit(2);
}

const seen = {};
const { browser, page } = await signedIn();
try {
  // The task group page shows the count stepper, bounded by the group's min and max.
  const stepper = page.locator("input.stepper-input-input");
  await open(page, `${nomad}/ui/jobs/${app}@${app}/${group}`, () => stepper);
  seen.before = Number(await stepper.inputValue());
  seen.min = Number(await stepper.getAttribute("min"));
  seen.max = Number(await stepper.getAttribute("max"));
  seen.allocationsBefore = (await allocationIDs(page)).length;

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
  seen.allocationsAfter = (await allocationIDs(page)).length;
  await page.waitForFunction((n) => [...document.querySelectorAll("td")]
    .filter((td) => td.textContent.trim() === "running").length >= n, seen.after, { timeout: 60000 });
  seen.running = seen.after;
  await page.screenshot({ path: shot, fullPage: true });
  seen.screenshot = shot;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
