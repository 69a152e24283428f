// What the console's browser flows share: settings from the environment, Debian's
// Chromium headless, and connecting the console with the test's token and scope.
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

async function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

async function connect(page) {
  await page.goto(env("CONSOLE_URL"));
  await page.fill("#token", env("TOKEN"));
  await page.fill("#subscription", env("SUBSCRIPTION"));
  await page.fill("#resourceGroup", env("RESOURCE_GROUP"));
  await page.fill("#watcher", env("WATCHER"));
  await page.click("#scope button[type=submit]");
}

module.exports = { env, launch, connect };
