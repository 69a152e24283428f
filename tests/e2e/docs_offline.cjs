// Loads /docs and /redoc in headless Chromium with every request to another host refused
// (as on a machine with no internet): both pages must render from the package's assets.
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

(async () => {
  const base = process.env.API_URL;
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(30000);
  const refused = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(base)) return route.continue();
    refused.push(url);
    return route.abort();
  });
  try {
    await page.goto(`${base}/docs`);
    await page.waitForSelector(".swagger-ui .info .title");
    await page.waitForSelector(".swagger-ui .btn.authorize");
    await page.screenshot({ path: `${process.env.SCREENSHOTS}/docs-swagger.png` });
    await page.goto(`${base}/redoc`);
    await page.waitForSelector("h1");
    await page.waitForFunction(() => document.body.innerText.includes("PacketWatch"));
    await page.screenshot({ path: `${process.env.SCREENSHOTS}/docs-redoc.png` });
    console.log(JSON.stringify({ refused }));
  } catch (error) {
    console.error(error.stack || String(error), JSON.stringify({ refused }));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
