// Open the test page in headless Chromium (WebGPU on), print every line
// it reports as it comes, and exit 0 only when it ends with "N passed, 0 failed".
// A page that never reports (timeout), a crash, or no WebGPU is a failure.
//
// Usage: node web/run.mjs URL [timeout seconds, default 600]
import puppeteer from "puppeteer-core";

const [url, timeoutArg] = process.argv.slice(2);
const timeout = 1000 * Number(timeoutArg ?? 600);
const browser = await puppeteer.launch({
  protocolTimeout: timeout + 60_000,
  executablePath: process.env.CHROMIUM ?? "/usr/lib/chromium/chromium",
  args: ["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu"],
});
let code = 1;
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeout);
  page.on("console", (m) => console.log(`[console] ${m.text()}`));
  page.on("pageerror", (e) => console.log(`[page error] ${e.message}`));
  // Every line the page reports, as it comes.
  await page.exposeFunction("reportLine", (line) => console.log(line));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.done, { timeout, polling: 1000 });
  const done = await page.evaluate(() => document.body.dataset.done);
  code = done === "passed" ? 0 : 1;
} catch (e) {
  console.log(`FAILED: the page did not report: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(code);
