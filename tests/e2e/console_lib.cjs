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

// Fluent UI's text fields and comboboxes: typed into as a person does, in the field's own input.
// As a person does: click into the field, type, Tab on (which closes a combobox's list of
// suggestions, that would otherwise lie over the next field).
async function fill(page, selector, value) {
  const input = page.locator(selector).locator("input");
  await input.click();
  await input.fill(value);
  await input.press("Tab");
  await page.waitForFunction(([field, wanted]) => document.querySelector(field).control.value === wanted,
                             [selector, value]);
}

// A Fluent UI select: opened, then the option clicked.
async function choose(page, selector, value) {
  await page.click(selector);
  await page.click(`${selector} fluent-option[value="${value}"]`);
}

// A Fluent UI checkbox clicked into the wanted state (it shows its state on its next frame).
async function tick(page, selector, wanted) {
  if ((await page.$eval(selector, (box) => box.checked)) !== wanted) await page.click(selector);
  await page.waitForSelector(`${selector}[aria-checked="${wanted}"]`);
}

const valueOf = (page, selector) => page.$eval(selector, (element) => element.value);

async function connect(page) {
  await page.goto(env("CONSOLE_URL"));
  await page.waitForFunction(() => customElements.get("fluent-text-field") !== undefined);
  await fill(page, "#token", env("TOKEN"));
  await fill(page, "#subscription", env("SUBSCRIPTION"));
  await fill(page, "#resourceGroup", env("RESOURCE_GROUP"));
  await fill(page, "#watcher", env("WATCHER"));
  await page.click("#connect");
}

module.exports = { env, launch, connect, fill, choose, tick, valueOf };
