// The lab page through its own controls in headless Chromium (WebGPU on):
// choose the tiny preset, press Train, pause (no step may run while
// paused) and resume, wait until both models have trained to the end,
// then check what a visitor sees: the state says finished, each model's
// sample grid is a picture (not one flat colour), every loss it showed is
// finite, and the last step is the preset's last. Saves OUT/lab.png (a
// screenshot) and OUT/lab.json (what the page trained); exits 0 only if
// every check passes.
//
// Usage: node web/lab.mjs URL [timeout seconds, default 600] [OUT, default target/web-lab]
import { mkdirSync, writeFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const [url, timeoutArg, outArg] = process.argv.slice(2);
const timeout = 1000 * Number(timeoutArg ?? 600);
const out = outArg ?? "target/web-lab";
mkdirSync(out, { recursive: true });
const browser = await puppeteer.launch({
  protocolTimeout: timeout + 60_000,
  executablePath: process.env.CHROMIUM ?? "/usr/lib/chromium/chromium",
  args: ["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu"],
});
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAILED"} lab: ${what}`);
  if (!ok) failures.push(what);
};
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 900 });
  page.setDefaultTimeout(timeout);
  page.on("console", (m) => console.log(`[console] ${m.text()}`));
  page.on("pageerror", (e) => console.log(`[page error] ${e.message}`));
  await page.goto(url);
  await page.select("#preset", "tiny");
  await page.click("#train");
  // Pause once training runs; nothing may train while paused.
  await page.waitForFunction(() => ["training", "failed", "finished"].includes(document.body.dataset.state), { polling: 100 });
  const steps = () => page.evaluate(() => [...document.querySelectorAll(".stats")].map((e) => e.textContent).join("|"));
  const now = await page.evaluate(() => document.body.dataset.state);
  check(now === "training", `training starts (the page says ${now})`);
  if (now === "training") {
    await page.click("#pause");
    await page.waitForFunction(() => document.body.dataset.state === "paused", { polling: 100 });
    // The call in flight finishes (a tiny GAN call is several seconds on a
    // CPU adapter); then nothing may move.
    await page.waitForFunction(() => !window.labBusy, { polling: 100 });
    const before = await steps();
    await new Promise((r) => setTimeout(r, 3000));
    check(before === (await steps()), "no step runs while paused");
    await page.click("#pause");
  }
  await page.waitForFunction(() => ["finished", "failed", "stopped"].includes(document.body.dataset.state), { timeout, polling: 500 });
  const state = await page.evaluate(() => document.body.dataset.state);
  const message = await page.evaluate(() => document.getElementById("message").textContent);
  check(state === "finished", `the page says ${state}${message ? ": " + message : ""}`);
  const result = await page.evaluate(() => window.labResult ?? null);
  writeFileSync(`${out}/lab.json`, JSON.stringify(result, null, 1));
  for (const [i, name] of ["VAE", "GAN"].entries()) {
    const h = result?.history?.[i] ?? [];
    const values = h.flatMap((p) => Object.values(p.values));
    check(h.length > 0 && values.every(Number.isFinite), `${name}: ${h.length} loss readings, all finite`);
    const grid = await page.evaluate((i) => {
      const c = document.querySelector(`#model-${i} canvas.grid`);
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      const greys = new Set();
      for (let p = 0; p < d.length; p += 4) greys.add(d[p]);
      return greys.size;
    }, i);
    check(grid > 16, `${name}: its sample grid has ${grid} grey levels (not blank)`);
    const stats = await page.evaluate((i) => document.querySelector(`#model-${i} .stats`).textContent, i);
    check(/step (\d+)\/\1\b/.test(stats), `${name}: trained to its last step (${stats.split("\n")[0]})`);
  }
  await page.screenshot({ path: `${out}/lab.png`, fullPage: true });
  console.log(`screenshot: ${out}/lab.png`);
} catch (e) {
  check(false, `the page did not finish: ${e.message}`);
} finally {
  await browser.close();
}
console.log(failures.length ? `lab: ${failures.length} check(s) failed` : "lab: every check passed");
process.exit(failures.length ? 1 : 0);
