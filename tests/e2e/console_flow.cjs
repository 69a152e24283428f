// Drives the web console in headless Chromium: connect, create a capture with a filter,
// see it Running, stop it, download its file, delete it with the confirmation. Saves a
// screenshot at each step. Settings come from the environment (see test_console.py).
const { env, launch, connect } = require("./console_lib.cjs");

(async () => {
  const shots = env("SCREENSHOTS");
  const browser = await launch();
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30000);
  const name = env("CAPTURE_NAME");
  const row = () => page.locator(`#captures tbody tr[data-name="${name}"]`);
  const status = () => row().locator("td.status");
  try {
    await connect(page);
    await page.waitForSelector(`#target option[value="${env("TARGET")}"]`, { state: "attached" });
    await page.screenshot({ path: `${shots}/1-connected.png`, fullPage: true });

    await page.selectOption("#target", env("TARGET"));
    await page.fill("#name", name);
    await page.fill("#storageId", env("STORAGE_ID"));
    await page.fill("#timeLimitInSeconds", "120");
    await page.click("#addFilter");
    await page.click("#addFilter");
    await page.locator("#filters tbody tr").nth(1).locator("button").click();
    const filter = page.locator("#filters tbody tr").first();
    await filter.locator("select").selectOption("UDP");
    await filter.locator('input[data-field="localPort"]').fill(env("LOCAL_PORT"));
    await page.screenshot({ path: `${shots}/2-create-form.png`, fullPage: true });
    await page.click("#start");

    await row().waitFor();
    await page.waitForFunction((n) => document.querySelector(`tr[data-name="${n}"] td.status`)?.textContent === "Running", name);
    console.log("RUNNING");
    await page.screenshot({ path: `${shots}/3-running.png`, fullPage: true });

    await new Promise((resolve) => process.stdin.once("data", resolve));   // the test sends traffic, then a line
    await row().locator("button", { hasText: "Stop" }).click();
    await page.waitForFunction((n) => document.querySelector(`tr[data-name="${n}"] td.stored`)?.textContent === "yes", name);
    if ((await status().textContent()) !== "Stopped") throw new Error(`status ${await status().textContent()}`);
    await page.screenshot({ path: `${shots}/4-stopped.png`, fullPage: true });

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      row().locator("button", { hasText: "Download" }).click(),
    ]);
    await download.saveAs(env("DOWNLOAD_TO"));
    await page.screenshot({ path: `${shots}/5-downloaded.png`, fullPage: true });

    page.once("dialog", (dialog) => dialog.accept());
    await row().locator("button", { hasText: "Delete" }).click();
    await row().waitFor({ state: "detached" });
    await page.screenshot({ path: `${shots}/6-deleted.png`, fullPage: true });

    const ring = env("RING_NAME");
    await page.fill("#name", ring);
    await page.fill("#storageId", "");
    await page.selectOption("#continuousCapture", "true");
    await page.fill("#localPath", `/var/captures/e2e/${ring}.cap`);
    await page.fill("#fileCount", "3");
    await page.fill("#fileSizeInBytes", "300000");
    await page.fill("#sessionTimeLimitInSeconds", "120");
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
