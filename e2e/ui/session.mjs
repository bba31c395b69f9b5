// What the Nomad UI scripts share: Debian's headless Chromium, a page signed in with
// $NOMAD_TOKEN, and loading a page until it shows what it should.
import { chromium } from "playwright-core";

// signedIn launches the browser and opens a page that signs in to the UI with
// $NOMAD_TOKEN. The caller closes the browser.
export async function signedIn() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(40000);
  await page.addInitScript((token) => window.localStorage.setItem("nomadTokenSecret", token),
    process.env.NOMAD_TOKEN || "");
  return { browser, page };
}

// open loads url until what (a locator of the page) shows: on a loaded machine the UI's
// first load can miss its data, and a reload fetches it again.
export async function open(page, url, what) {
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

// allocationIDs are the distinct allocations the page links to.
export async function allocationIDs(page) {
  return page.locator('a[href^="/ui/allocations/"]').evaluateAll(
    (as) => [...new Set(as.map((a) => a.getAttribute("href").split("/")[3]))]);
}
