// Opens an app's job in the Nomad web UI with Debian's headless Chromium, checks what the
// page shows, saves a screenshot and prints what it saw as JSON.
//
//   NOMAD_TOKEN=... node nomad-ui.mjs <nomad http address> <app> <process> <dynos> <screenshot.png>
//
// The grid's ACLs are on: the UI signs in with $NOMAD_TOKEN, as a user pastes it on the
// UI's ACL Tokens page. The app's job lives in the app's own namespace.
import { allocationIDs, open, signedIn } from "./session.mjs";

const [nomad, app, group, dynosArg, shot] = process.argv.slice(2);
if (!nomad || !app || !group || !dynosArg || !shot) {
  console.error("usage: node nomad-ui.mjs NOMAD_ADDR APP PROCESS DYNOS SCREENSHOT");
  process.exit(2);
}
const dynos = Number(dynosArg);

const seen = {};
const { browser, page } = await signedIn();
try {
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
  seen.allocations = (await allocationIDs(page)).length;
  // The job's meta names the app and its release.
  seen.meta = (await page.locator("td", { hasText: "app" }).count()) > 0 &&
    (await page.locator("td", { hasText: "release" }).count()) > 0;
  await page.screenshot({ path: shot, fullPage: true });
  seen.screenshot = shot;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
