// Opens an app's job in the Nomad web UI with Debian's headless Chromium, checks what the
// page shows, saves a screenshot and prints what it saw as JSON.
//
//   NOMAD_TOKEN=... node nomad-ui.mjs <nomad http address> <app> <process> <dynos> <screenshot.png>
//
// The grid's ACLs are on: the UI signs in with $NOMAD_TOKEN, as a user pastes it on the
// UI's ACL Tokens page. The app's job lives in the app's own namespace.
import { chromium } from "playwright-core";

const [nomad, app, group, dynosArg, shot] = process.argv.slice(2);
if (!nomad || !app || !group || !dynosArg || !shot) {
  console.error("usage: node nomad-ui.mjs NOMAD_ADDR APP PROCESS DYNOS SCREENSHOT");
  process.exit(2);
}
const dynos = Number(dynosArg);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const seen = {};

// open loads url until what (a locator of the page) shows: on a loaded machine the UI's
// first load can miss its data, and a reload fetches it again.
async function open(page, url, what) {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(url);
      await what(page).first().waitFor({ timeout: 40000 });
      return;
    } catch (e) {
      if (attempt >= 3) throw e;
      console.error(`${url}: not shown yet (${e.message.split("\n")[0]}); reloading`);
    }
  }
}

try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(40000);
  await page.addInitScript((token) => window.localStorage.setItem("nomadTokenSecret", token),
    process.env.NOMAD_TOKEN || "");

  // The job list shows the app as a job named after it.
  await open(page, `${nomad}/ui/jobs?namespace=${app}`, (p) => p.getByRole("link", { name: app, exact: true }));
  seen.jobListed = true;

  // The job page shows the app's task group (its process type) and its allocations.
  await open(page, `${nomad}/ui/jobs/${app}@${app}`, (p) => p.getByText(group, { exact: true }));
  seen.taskGroup = group;
  // Its dynos are the job's allocations: the summary counts the running ones, and the
  // recent allocations link each one.
  await page.getByText(`${dynos}/${dynos} Allocations Running`).first().waitFor();
  seen.running = dynos;
  const links = await page.locator('a[href^="/ui/allocations/"]').evaluateAll(
    (as) => [...new Set(as.map((a) => a.getAttribute("href").split("/")[3]))]);
  seen.allocations = links.length;
  // The job's meta names the app and its release.
  seen.meta = (await page.locator("td", { hasText: "app" }).count()) > 0 &&
    (await page.locator("td", { hasText: "release" }).count()) > 0;
  await page.screenshot({ path: shot, fullPage: true });
  seen.screenshot = shot;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
