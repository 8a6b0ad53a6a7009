// browser_page.cjs NPM_DIR BASE_URL PERSIAN_ID SCREENSHOT — the chat page in
// Debian's chromium (headless) through puppeteer-core: sends a Persian and an
// English message, waits for the streamed replies, reports the computed
// direction of every message element, then a reply forced to start with a
// Persian token (logit_bias on PERSIAN_ID); prints the findings as JSON.
const { createRequire } = require("module");
const fs = require("fs");
const os = require("os");
const path = require("path");
const [npmDir, baseURL, persianId, screenshot] = process.argv.slice(2);
const puppeteer = createRequire(npmDir + "/package.json")("puppeteer-core");

async function waitDone(page, n) {
  await page.waitForFunction((k) => document.querySelectorAll(".msg.assistant[data-done]").length >= k,
    { timeout: 60000 }, n);
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "gemfa-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.setViewport({ width: 900, height: 700 });
    await page.goto(baseURL + "/", { waitUntil: "load", timeout: 30000 });
    await page.evaluate(() => { document.getElementById("temperature").value = "0";
                                document.getElementById("max_tokens").value = "24"; });
    await page.type("#input", "سلام! امروز هوا چطور است؟");
    await page.click("#send");
    await waitDone(page, 1);
    await page.type("#input", "Hello, how is the weather today?");
    await page.keyboard.press("Enter");
    await waitDone(page, 2);
    // a reply forced to start with a Persian token
    await page.evaluate((id) => window.gemfaSend("Say something", { logit_bias: { [id]: 100 }, max_tokens: 4 }),
                        persianId);
    await waitDone(page, 3);
    const result = await page.evaluate(() => {
      const msgs = [...document.querySelectorAll(".msg")];
      return {
        messages: msgs.map((m) => ({ role: m.classList.contains("user") ? "user" : "assistant",
                                     dir: m.getAttribute("dir"), direction: getComputedStyle(m).direction,
                                     text: m.querySelector(".text").textContent })),
        inputDir: document.getElementById("input").getAttribute("dir"),
        injected: document.querySelectorAll(".msg .text *").length,
      };
    });
    result.errors = errors;
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
