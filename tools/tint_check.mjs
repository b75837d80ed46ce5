// Compile every .wgsl file of a folder with Tint, Chrome's WGSL compiler
// (Dawn's Node binding, the npm package `webgpu`), and create a compute
// pipeline for each of its entry points.
//
//   npm ci --prefix tools
//   cargo run --release --example dump_kernels -- target/kernels
//   node tools/tint_check.mjs target/kernels
//
// Tint enforces what naga (the engine's compiler, through wgpu) does not:
// WGSL's uniformity analysis (barriers only in workgroup-uniform control
// flow) and const-expression rules (e.g. no NaN or infinite constants).
// Dawn runs on its null backend (`backend=null`): no GPU and no driver;
// shader-module creation still runs Tint's whole front end (parse, resolve,
// uniformity), and pipeline creation validates each entry point against
// the WebGPU default limits (workgroup size and storage), which is what the
// engine's test suite opens its device with.
//
// Subgroup operations: naga (wgpu 30) takes them without a directive and
// refuses `enable subgroups;`, while Tint requires it. So a module that
// uses a subgroup builtin (`subgroupBroadcast`, `subgroup_invocation_id`,
// ...) is checked with that line added in front, on a device with the
// `subgroups` feature; Tint then also checks that each subgroup operation
// sits in uniform control flow.
//
// Exit 0 when every file passes; else 1, naming each rejected file with
// Tint's first error line. Usage errors exit 2.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { create, globals } from 'webgpu';

function usage(msg) {
  console.error(`Error: ${msg}\nusage: node tools/tint_check.mjs DIR   (DIR holds the .wgsl files to check)`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length !== 1 || args[0].startsWith('-')) usage('give exactly one folder');
const dir = args[0];
let st;
try {
  st = statSync(dir);
} catch (e) {
  usage(`${dir}: ${e.code === 'ENOENT' ? 'no such folder' : e.message}`);
}
if (!st.isDirectory()) usage(`${dir} is not a folder`);
const files = readdirSync(dir).filter((f) => f.endsWith('.wgsl')).sort();
if (files.length === 0) usage(`${dir} holds no .wgsl files`);

Object.assign(globalThis, globals);
const gpu = create(['backend=null']);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('Error: Dawn gave no adapter on its null backend');
  process.exit(1);
}
if (!adapter.features.has('subgroups')) {
  console.error("Error: Dawn's null adapter lacks the 'subgroups' feature");
  process.exit(1);
}
const device = await adapter.requestDevice({ requiredFeatures: ['subgroups'] });

// Whether a module uses subgroup operations (comments stripped).
function usesSubgroups(code) {
  const src = code.replace(/\/\/[^\n]*/g, '');
  return /\bsubgroup[A-Z]\w*\s*\(|@builtin\s*\(\s*subgroup_/.test(src);
}

// Compute entry points: `@compute ... fn NAME(` (attributes may sit on
// their own lines). Comments are stripped first.
function entryPoints(code) {
  const src = code.replace(/\/\/[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const names = [];
  const re = /@compute\b[^;{}]*?\bfn\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/g;
  for (let m; (m = re.exec(src)); ) names.push(m[1]);
  return names;
}

function firstLine(s) {
  return String(s).split('\n').find((l) => l.trim() !== '') ?? String(s);
}

const rejected = [];
let entries = 0;
for (const f of files) {
  const path = join(dir, f);
  const wgsl = readFileSync(path, 'utf8');
  // the added directive shifts Tint's line numbers by one
  const shift = usesSubgroups(wgsl) ? 1 : 0;
  const code = shift ? `enable subgroups;\n${wgsl}` : wgsl;
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code, label: basename(f, '.wgsl') });
  const info = await module.getCompilationInfo();
  const scopeErr = await device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0 || scopeErr) {
    const e = errors[0];
    const why = e ? `${e.lineNum - shift}:${e.linePos}: error: ${e.message}` : firstLine(scopeErr.message);
    const more = errors.length > 1 ? ` (+${errors.length - 1} more)` : '';
    rejected.push(`${path}:${why}${more}`);
    continue;
  }
  const names = entryPoints(code);
  if (names.length === 0) {
    rejected.push(`${path}: no @compute entry point found`);
    continue;
  }
  for (const entryPoint of names) {
    entries += 1;
    device.pushErrorScope('validation');
    device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint } });
    const err = await device.popErrorScope();
    if (err) {
      rejected.push(`${path}: entry point ${entryPoint}: ${firstLine(err.message)}`);
      break;
    }
  }
}
device.destroy();

const passed = files.length - rejected.length;
for (const r of rejected) console.error(`REJECTED ${r}`);
console.log(
  `tint (webgpu ${version()} null backend): ${passed} of ${files.length} modules passed` +
    ` (${entries} compute pipelines created)` +
    (rejected.length ? `, ${rejected.length} rejected` : ''),
);
process.exit(rejected.length ? 1 : 0);

function version() {
  try {
    const url = new URL('./node_modules/webgpu/package.json', import.meta.url);
    return JSON.parse(readFileSync(url, 'utf8')).version;
  } catch {
    return '?';
  }
}
