// Signing in to the console with Entra ID: "Sign in with Entra ID" goes to the tenant's
// authorization endpoint (the local issuer signs the user in at once) and back with a code,
// which the console redeems with its PKCE verifier; it then connects as with a typed token,
// the subscription its role reaches preselected. Settings from the environment.
const { env, launch } = require("./console_lib.cjs");

(async () => {
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, ignoreHTTPSErrors: true });
  page.setDefaultTimeout(30000);
  try {
    await page.goto(env("CONSOLE_URL"));
    await page.waitForFunction(() => customElements.get("fluent-button") !== undefined);
    await page.waitForSelector("#signin:not([hidden])");
    await page.click("#signin");
    await page.waitForFunction(() => document.querySelector("#message").textContent === "Connected");
    if (page.url() !== env("CONSOLE_URL")) throw new Error(`the code was left in the address: ${page.url()}`);
    const subscription = await page.$eval("#subscription", (box) => box.control.value);
    if (subscription !== env("SUBSCRIPTION")) throw new Error(`subscription preselected: ${subscription}`);
    const token = await page.evaluate(() => sessionStorage.getItem("packetwatch.token"));
    console.log(`SIGNED IN ${token.split(".").length === 3 ? "with a JWT" : "without a JWT"}`);
    await page.screenshot({ path: `${env("SCREENSHOTS")}/signed-in-with-entra-id.png` });
    await new Promise((resolve) => process.stdin.once("data", resolve));
    console.log("DONE");
  } finally {
    await browser.close();
  }
})().catch((error) => { console.error(error); process.exit(1); });
