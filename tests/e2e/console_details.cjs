// The console as one uses it day to day: connect once (a reload keeps the connection for
// the tab), find a capture by searching, open its details (live status while it runs; the
// protocols and where the file is once it stopped; a notification that it stopped), and the
// page at a phone's width with no sideways scrolling, each checked with axe-core. Settings
// from the environment (see test_console.py).
const { env, launch, connect, fill, tick, valueOf } = require("./console_lib.cjs");

// axe-core in the page: no serious or critical accessibility violation.
async function audit(page, where) {
  await page.addScriptTag({ path: env("AXE") });
  const result = await page.evaluate(() => axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  console.log(`AXE ${where} ${result.violations.length} violations, ${serious.length} serious: ` +
              serious.map((v) => `${v.id} (${v.nodes.length})`).join(", "));
  if (serious.length) throw new Error(`axe-core at ${where}: ${JSON.stringify(serious.map((v) => [v.id, v.help, v.nodes.map((n) => n.target)]))}`);
}

(async () => {
  const shots = env("SCREENSHOTS");
  const name = env("CAPTURE_NAME");
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30000);
  const status = () => page.locator(`tr[data-name="${name}"] td.status`);
  try {
    await connect(page);
    await page.waitForFunction((n) => document.querySelector(`tr[data-name="${n}"] td.status`)?.textContent === "Running", name);
    await page.reload();  // signed in once: the tab remembers the connection
    await page.waitForFunction((n) => document.querySelector(`tr[data-name="${n}"] td.status`)?.textContent === "Running", name);
    if ((await valueOf(page, "#watcher")) !== env("WATCHER")) throw new Error("connection not restored");
    const subscriptions = await page.$$eval("#subscription fluent-option", (options) => options.map((o) => o.value));
    if (!subscriptions.includes(env("SUBSCRIPTION"))) throw new Error(`subscriptions offered: ${subscriptions}`);
    // the create form: configured storage accounts offered, a default name, filter values checked as typed
    const accounts = await page.$$eval("#storageId fluent-option", (options) => options.map((o) => o.value));
    if (!accounts.includes("devstoreaccount1")) throw new Error(`storage accounts offered: ${accounts}`);
    if (!/_\d{14}$/.test(await valueOf(page, "#name"))) throw new Error("no default capture name");
    await page.click("#addFilter");
    const port = page.locator('#filters fluent-text-field[data-field="localPort"]');
    await port.locator("input").fill("80:90");
    if ((await port.getAttribute("aria-invalid")) !== "true") throw new Error("80:90 not flagged");
    await port.locator("input").fill("80-90");
    if ((await port.getAttribute("aria-invalid")) !== "false") throw new Error("80-90 flagged");
    await fill(page, "#search", "no-such-capture");
    await page.waitForSelector("tr.empty");
    await fill(page, "#search", name.slice(0, 8));
    await page.locator(`tr[data-name="${name}"] button.link`).click();
    await page.waitForFunction(() => document.getElementById("detailsStatus").textContent.includes("live"));
    console.log("LIVE " + (await page.textContent("#detailsStatus")));
    await page.screenshot({ path: `${shots}/details-1-running.png`, fullPage: true });
    await new Promise((resolve) => process.stdin.once("data", resolve));   // the test stops it, then a line
    await page.waitForFunction(() => document.getElementById("detailsProtocols").textContent.includes("UDP"));
    console.log("STOPPED " + (await page.textContent("#detailsStatus")));
    await page.waitForFunction((n) => document.getElementById("notifications").textContent.includes(`${n} stopped`), name);
    console.log("FILE " + (await page.textContent("#detailsFile")));
    await page.screenshot({ path: `${shots}/details-2-stopped.png`, fullPage: true });
    await audit(page, "desktop");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: `${shots}/details-3-phone.png`, fullPage: true });
    if (overflow > 0) throw new Error(`the page is ${overflow} px wider than a phone`);
    await audit(page, "phone");
    // the command bar acts on the selected captures
    await tick(page, `tr[data-name="${name}"] fluent-checkbox`, true);
    page.once("dialog", (dialog) => dialog.accept());
    await page.click("#cmdDelete");
    await page.locator(`tr[data-name="${name}"]`).waitFor({ state: "detached" });
    console.log("DONE");
  } catch (error) {
    await page.screenshot({ path: `${shots}/details-failure.png`, fullPage: true });
    console.error(error.stack || String(error));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
