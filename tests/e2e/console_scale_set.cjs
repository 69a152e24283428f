// Drives the web console in headless Chromium to create a scale set capture: target type
// "Virtual machine scale set", the scale set, one instance unchecked in the instance
// picker; waits for it Running and saves screenshots. Settings from the environment (see
// test_scale_sets.py).
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

(async () => {
  const shots = env("SCREENSHOTS");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30000);
  const name = env("CAPTURE_NAME");
  try {
    await page.goto(env("CONSOLE_URL"));
    await page.fill("#token", env("TOKEN"));
    await page.fill("#subscription", env("SUBSCRIPTION"));
    await page.fill("#resourceGroup", env("RESOURCE_GROUP"));
    await page.fill("#watcher", env("WATCHER"));
    await page.click("#scope button[type=submit]");
    await page.waitForSelector("#target option", { state: "attached" });
    await page.selectOption("#targetType", "AzureVMSS");
    await page.selectOption("#target", env("SCALE_SET"));
    await page.locator(`#instances input[value="${env("UNCHECK")}"]`).uncheck();
    await page.fill("#name", name);
    await page.fill("#filePath", `/var/captures/e2e/${name}.cap`);
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
