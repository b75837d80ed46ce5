// The lab page through its own controls in headless Chromium (WebGPU on),
// as a visitor uses it:
// 1. choose the tiny preset, press Train, pause (no step may run while
//    paused) and resume, wait until both models have trained to the end:
//    the state says finished, each sample grid is a picture (not one flat
//    colour), every loss shown is finite, the last step is the preset's;
// 2. the figures that follow on their own: every model's and baseline's
//    FID, precision, recall, KL to uniform and sharpness finite, the VAE's
//    test ELBO, both 20x20 latent grids pictures; then a screenshot;
// 3. Download both checkpoints (OUT/vae.safetensors, OUT/gan.safetensors:
//    scripts/web/test.sh scores them natively);
// 4. load the GAN's file as the VAE: refused on the page, naming it, and
//    the VAE kept; load the native checkpoint NATIVE_VAE as the VAE: its
//    samples drawn;
// 5. lose the device (as a driver reset would): Score fails with a message
//    saying so and what is kept, Download still gives the GAN's kept
//    checkpoint, and Train starts again on a new device, on Fashion-MNIST
//    (its files and classifier) this time.
// Saves OUT/lab.png (the screenshot) and OUT/lab.json (what the page
// trained and measured); exits 0 only if every check passes.
//
// Usage: node web/lab.mjs URL NATIVE_VAE [timeout seconds, default 600] [OUT, default target/web-lab]
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import puppeteer from "puppeteer-core";

const [url, nativeVae, timeoutArg, outArg] = process.argv.slice(2);
if (!url || !nativeVae) {
  console.error("usage: node web/lab.mjs URL NATIVE_VAE [timeout seconds] [OUT]");
  process.exit(2);
}
const timeout = 1000 * Number(timeoutArg ?? 600);
const out = resolve(outArg ?? "target/web-lab");
const downloads = `${out}/downloads`;
rmSync(downloads, { recursive: true, force: true });
mkdirSync(downloads, { recursive: true });
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
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 900 });
  page.setDefaultTimeout(timeout);
  page.on("console", (m) => console.log(`[console] ${m.text()}`));
  page.on("pageerror", (e) => console.log(`[page error] ${e.message}`));
  const cdp = await page.createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
  const pageState = () => page.evaluate(() => document.body.dataset.state);
  const message = () => page.evaluate(() => document.getElementById("message").textContent);
  const waitState = (states) => page.waitForFunction((s) => s.includes(document.body.dataset.state), { timeout, polling: 250 }, states);
  // Grey levels of canvas `cls` of model i: more than a few means a picture.
  const greys = (i, cls) => page.evaluate((i, cls) => {
    const c = document.querySelector(`#model-${i} canvas.${cls}`);
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const levels = new Set();
    for (let p = 0; p < d.length; p += 4) levels.add(d[p]);
    return levels.size;
  }, i, cls);
  // Press model i's Download and wait for its file (in an emptied folder:
  // a file of the same name may be overwritten); returns its path.
  const download = async (i) => {
    for (const f of readdirSync(downloads)) rmSync(`${downloads}/${f}`);
    await page.click(`#model-${i} .download`);
    for (let t = 0; t < 600; t++) {
      const done = readdirSync(downloads).filter((f) => f.endsWith(".safetensors"));
      if (done.length) return `${downloads}/${done[0]}`;
      await sleep(100);
    }
    return null;
  };
  // Forget the state shown, so the next wait sees the outcome of what
  // follows, not the state before it.
  const forget = () => page.evaluate(() => { document.body.dataset.state = ""; });
  const upload = async (i, file) => {
    const input = await page.$(`#model-${i} input.load`);
    await forget();
    await input.uploadFile(file);
  };

  await page.goto(url);
  // 1. Train tiny through the controls, with a pause.
  await page.select("#preset", "tiny");
  await page.click("#train");
  await waitState(["training", "failed", "finished", "scored"]);
  const steps = () => page.evaluate(() => [...document.querySelectorAll(".stats")].map((e) => e.textContent).join("|"));
  const now = await pageState();
  check(now === "training", `training starts (the page says ${now})`);
  if (now === "training") {
    await page.click("#pause");
    await waitState(["paused"]);
    // The call in flight finishes (a tiny GAN call is several seconds on a
    // CPU adapter); then nothing may move.
    await page.waitForFunction(() => !window.labBusy, { polling: 100 });
    const before = await steps();
    await sleep(3000);
    check(before === (await steps()), "no step runs while paused");
    await page.click("#pause");
  }
  await waitState(["finished", "scored", "failed", "stopped"]);
  const trained = await pageState();
  check(["finished", "scored"].includes(trained), `the page says ${trained}: ${await message()}`);
  const result = await page.evaluate(() => window.labResult ?? null);
  for (const [i, name] of ["VAE", "GAN"].entries()) {
    const h = result?.history?.[i] ?? [];
    const values = h.flatMap((p) => Object.values(p.values));
    check(h.length > 0 && values.every(Number.isFinite), `${name}: ${h.length} loss readings, all finite`);
    const g = await greys(i, "grid");
    check(g > 16, `${name}: its sample grid has ${g} grey levels (not blank)`);
    const stats = await page.evaluate((i) => document.querySelector(`#model-${i} .stats`).textContent, i);
    check(/step (\d+)\/\1\b/.test(stats), `${name}: trained to its last step (${stats.split("\n")[0]})`);
  }

  // 2. The figures, scored on their own after training.
  await waitState(["scored", "failed"]);
  check((await pageState()) === "scored", `scored after training: ${await message()}`);
  const figures = await page.evaluate(() => window.labFigures ?? null);
  console.log(`scoring both models and the baselines took ${figures?.seconds?.toFixed(1)} s`);
  const value = (rows, key) => rows?.find((r) => r.key === key)?.value;
  const common = ["fid", "precision", "recall", "kl_to_uniform", "sharpness"];
  for (const name of ["VAE", "GAN"]) {
    const rows = figures?.columns?.[name];
    const got = common.map((k) => `${k} ${value(rows, k)}`).join(", ");
    check(common.every((k) => Number.isFinite(value(rows, k))), `${name}'s figures: ${got}`);
  }
  check(Number.isFinite(value(figures?.columns?.VAE, "test_neg_elbo")), `the VAE's test ELBO: ${value(figures?.columns?.VAE, "test_neg_elbo")}`);
  const base = figures?.baselines ?? [];
  check(base.length === 4 && base.every((b) => Number.isFinite(value(b.figures, "fid"))),
    `4 baselines with an FID: ${base.map((b) => `${b.title} ${value(b.figures, "fid")?.toFixed(1)}`).join(", ")}`);
  for (const [i, name] of ["VAE", "GAN"].entries()) {
    const g = await greys(i, "latents");
    check(g > 16, `${name}: its latent grid has ${g} grey levels (not blank)`);
  }
  writeFileSync(`${out}/lab.json`, JSON.stringify({ result, figures }, null, 1));
  await page.screenshot({ path: `${out}/lab.png`, fullPage: true });
  console.log(`screenshot: ${out}/lab.png`);

  // 3. Both checkpoints downloaded through the page.
  for (const [i, name] of ["vae", "gan"].entries()) {
    const file = await download(i);
    check(file !== null, `${name}: Download saved ${file}`);
    if (file) copyFileSync(file, `${out}/${name}.safetensors`);
  }

  // 4. A wrong checkpoint is refused on the page; a native one loads.
  if (existsSync(`${out}/gan.safetensors`)) {
    await upload(0, `${out}/gan.safetensors`);
    await waitState(["failed", "loaded"]);
    const m = await message();
    check((await pageState()) === "failed" && /not the VAE/.test(m), `the GAN's file as the VAE is refused: ${m.split("\n")[0]}`);
    const source = await page.evaluate(() => document.querySelector("#model-0 .source").textContent);
    check(/tiny preset/.test(source), `the VAE is kept (${source})`);
  }
  await upload(0, nativeVae);
  await waitState(["failed", "loaded"]);
  check((await pageState()) === "loaded", `the native VAE loads: ${await message()}`);
  const g = await greys(0, "grid");
  check(g > 16, `the native VAE's samples: ${g} grey levels`);

  // 5. A lost device: said on the page, the kept checkpoint downloadable,
  // and Train starts again on a new device.
  await page.evaluate(() => window.labWasm.lab_lose_device());
  await forget();
  await page.click("#score");
  await waitState(["failed", "scored"]);
  const lost = await message();
  check((await pageState()) === "failed" && /device was lost/.test(lost) && /the GAN as of step 16/.test(lost),
    `after a lost device the page says: ${lost.replace(/\n/g, " ")}`);
  const kept = await download(1);
  const said = await message();
  check(kept !== null && /kept before the device was lost/.test(said), `the GAN's kept checkpoint downloads: ${kept} (${said})`);
  // ... with Fashion-MNIST this time: its files and its classifier, and
  // the GAN on the least-squares loss.
  await page.select("#dataset", "fashion");
  await page.select("#gan-loss", "least-squares");
  await forget();
  await page.click("#train");
  await waitState(["training", "failed"]);
  check((await pageState()) === "training", `Train starts again on a new device, on Fashion-MNIST: ${await message()}`);
  await page.click("#stop");
  await waitState(["stopped", "failed"]);
  const after = JSON.parse(await page.evaluate(() => window.labWasm.lab_status()));
  check(after.dataset === "fashion" && !after.lost, `the new device trains Fashion-MNIST (${after.dataset}, lost: ${after.lost})`);
  // (stopped as soon as training starts: the GAN may not have stepped yet)
  check(/least-squares loss/.test(after.models[1].source),
    `the GAN is built with the loss chosen: ${after.models[1].source}`);
} catch (e) {
  check(false, `the page did not finish: ${e.message}`);
} finally {
  await browser.close();
}
console.log(failures.length ? `lab: ${failures.length} check(s) failed` : "lab: every check passed");
process.exit(failures.length ? 1 : 0);
