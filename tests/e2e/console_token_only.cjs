// A new user's first visit: the token pasted, Connect clicked at once. The console offers and
// preselects what the API lists for the token (its one subscription, then the watchers) and
// connects without a subscription being typed. Settings from the environment (see test_up.py).
const { env, launch } = require("./console_lib.cjs");

(async () => {
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30000);
  try {
    await page.goto(env("CONSOLE_URL"));
    await page.waitForFunction(() => customElements.get("fluent-text-field") !== undefined);
    const token = page.locator("#token").locator("input");
    await token.click();
    await token.fill(env("TOKEN"));
    await page.click("#connect");
    await page.waitForFunction(() => document.querySelector("#message").textContent === "Connected");
    const subscription = await page.$eval("#subscription", (box) => box.control.value);
    if (subscription !== env("SUBSCRIPTION")) throw new Error(`subscription preselected: ${subscription}`);
    await page.waitForFunction((w) => [...document.querySelectorAll("#watcher fluent-option")].some((o) => o.value === w),
                               env("WATCHER"));
    const agents = await page.$$eval("#target fluent-option", (options) => options.map((o) => o.value));
    if (!agents.includes(env("VM"))) throw new Error(`targets offered: ${agents}`);
    console.log("CONNECTED with the token alone");
    await new Promise((resolve) => process.stdin.once("data", resolve));
    console.log("DONE");
  } finally {
    await browser.close();
  }
})().catch((error) => { console.error(error); process.exit(1); });
