// Drives the web console in headless Chromium: connect, create a capture with a filter,
// see it Running, stop it, download its file, delete it with the confirmation. Saves a
// screenshot at each step. Settings come from the environment (see test_console.py).
const { env, launch, connect, fill, choose } = require("./console_lib.cjs");

(async () => {
  const shots = `${env("SCREENSHOTS")}/${env("VIEWPORT_NAME")}`;
  const browser = await launch();
  const [width, height] = env("VIEWPORT").split("x").map(Number);
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width, height } });
  page.setDefaultTimeout(30000);
  const name = env("CAPTURE_NAME");
  const row = () => page.locator(`#captures tbody tr[data-name="${name}"]`);
  const status = () => row().locator("td.status");
  try {
    await connect(page);
    await page.waitForSelector(`#target fluent-option[value="${env("TARGET")}"]`, { state: "attached" });
    await page.screenshot({ path: `${shots}/1-connected.png`, fullPage: true });

    await choose(page, "#target", env("TARGET"));
    await fill(page, "#name", name);
    await fill(page, "#storageId", env("STORAGE_ACCOUNT"));
    await fill(page, "#timeLimitInSeconds", "120");
    await page.click("#addFilter");
    await page.click("#addFilter");
    await page.locator("#filters .filter").nth(1).locator("fluent-button").click();
    await choose(page, "#filters .filter:first-child fluent-select", "UDP");
    await fill(page, '#filters .filter:first-child fluent-text-field[data-field="localPort"]', env("LOCAL_PORT"));
    await page.screenshot({ path: `${shots}/2-create-form.png`, fullPage: true });
    await page.click("#start");

    await row().waitFor();
    await page.waitForFunction((n) => document.querySelector(`tr[data-name="${n}"] td.status`)?.textContent === "Running", name);
    console.log("RUNNING");
    await page.screenshot({ path: `${shots}/3-running.png`, fullPage: true });

    await new Promise((resolve) => process.stdin.once("data", resolve));   // the test sends traffic, then a line
    await row().locator("fluent-button", { hasText: "Stop" }).click();
    await page.waitForFunction((n) => document.querySelector(`tr[data-name="${n}"] td.stored`)?.textContent === "yes", name);
    if ((await status().textContent()) !== "Stopped") throw new Error(`status ${await status().textContent()}`);
    await page.screenshot({ path: `${shots}/4-stopped.png`, fullPage: true });

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      row().locator("fluent-button", { hasText: "Download" }).click(),
    ]);
    await download.saveAs(env("DOWNLOAD_TO"));
    await page.screenshot({ path: `${shots}/5-downloaded.png`, fullPage: true });

    page.once("dialog", (dialog) => dialog.accept());
    await row().locator("fluent-button", { hasText: "Delete" }).click();
    await row().waitFor({ state: "detached" });
    await page.screenshot({ path: `${shots}/6-deleted.png`, fullPage: true });

    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) throw new Error(`the page is ${overflow} px wider than the window`);
    if (!process.env.RING_NAME) { console.log("DONE"); return; }
    const ring = env("RING_NAME");
    await fill(page, "#name", ring);
    await fill(page, "#storageId", "");
    await choose(page, "#continuousCapture", "true");
    await fill(page, "#localPath", `/var/captures/e2e/${ring}.cap`);
    await fill(page, "#fileCount", "3");
    await fill(page, "#fileSizeInBytes", "300000");
    await fill(page, "#sessionTimeLimitInSeconds", "120");
    await page.click("#start");
    await page.waitForFunction((n) => document.querySelector(`tr[data-name="${n}"] td.status`)?.textContent === "Running", ring);
    await page.screenshot({ path: `${shots}/7-continuous-running.png`, fullPage: true });
    console.log("DONE");
  } catch (error) {
    await page.screenshot({ path: `${shots}/failure.png`, fullPage: true });
    console.error(error.stack || String(error));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
