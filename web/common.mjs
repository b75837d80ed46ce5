// What both pages (index.html, lab.html) need before the engine runs.

// The file `path` served beside the page, as bytes; a missing one is an
// error naming it, with `hint` saying how it gets there.
export async function fetchBytes(path, hint) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`could not fetch ${path} (HTTP ${r.status}): ${hint}`);
  return new Uint8Array(await r.arrayBuffer());
}

// The engine's module, loaded and started; refused first where the
// browser has no WebGPU.
export async function loadEngine() {
  if (!navigator.gpu) {
    throw new Error("this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome, Edge or Safari, or Firefox with WebGPU enabled");
  }
  const wasm = await import("./pkg/vae_vs_gan_web.js");
  await wasm.default();
  return wasm;
}
