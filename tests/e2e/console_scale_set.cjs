// Drives the web console in headless Chromium to create a scale set capture: target type
// "Virtual machine scale set", the scale set, one instance unchecked in the instance
// picker; waits for it Running and saves screenshots. Settings from the environment (see
// test_scale_sets.py).
const { env, launch, connect, fill, choose, tick } = require("./console_lib.cjs");

(async () => {
  const shots = env("SCREENSHOTS");
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30000);
  const name = env("CAPTURE_NAME");
  try {
    await connect(page);
    await page.waitForSelector("#target fluent-option", { state: "attached" });
    await choose(page, "#targetType", "AzureVMSS");
    await choose(page, "#target", env("SCALE_SET"));
    await tick(page, `#instances fluent-checkbox[value="${env("UNCHECK")}"]`, false);
    await fill(page, "#name", name);
    await fill(page, "#filePath", `/var/captures/e2e/${name}.cap`);
    await page.screenshot({ path: `${shots}/vmss-1-create-form.png`, fullPage: true });
    await page.click("#start");
    await page.waitForFunction((n) => document.querySelector(`tr[data-name="${n}"] td.status`)?.textContent === "Running", name);
    await page.screenshot({ path: `${shots}/vmss-2-running.png`, fullPage: true });
    console.log("DONE");
  } catch (error) {
    await page.screenshot({ path: `${shots}/vmss-failure.png`, fullPage: true });
    console.error(error.stack || String(error));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
