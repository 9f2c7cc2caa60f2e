/**
 * Where the time goes in a `.cpuprofile` (from `node --cpu-prof`, e.g. `npm run bench --
 * --profile`): self time by function and by package, heaviest first.
 * `npx tsx scripts/bench/profile-summary.ts <file.cpuprofile> [top]`
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The package (or project folder) a script URL belongs to. */
function packageOf(url: string): string {
  if (url === "") return "(native / V8)";
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith("node:")) return url;
  const project = /\/(common|gateway|subgraphs|scripts)\//.exec(url);
  return project ? `project ${project[1]}/` : url;
}

const [file, topArgument, skipArgument] = process.argv.slice(2);
if (!file) {
  console.error("usage: profile-summary <file.cpuprofile> [top] [skip-seconds]");
  process.exit(2);
}
const top = Number(topArgument ?? 25);
// Start-up (module loading, compilation) is not the steady state: skip its first seconds.
const skipMicros = Number(skipArgument ?? 0) * 1e6;
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
// "(idle)": the event loop waiting for events. "(program)" is busy — native code V8 cannot
// attribute to a JavaScript function (the embedder, system calls) — and counts as busy time.
const IDLE = new Set(["(idle)"]);
const parentOf = new Map<number, number>();
for (const node of profile.nodes)
  for (const child of node.children ?? []) parentOf.set(child, node.id);
const frameName = (frame: ProfileNode["callFrame"]) =>
  `${frame.functionName || "(anonymous)"} ${frame.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/(common|gateway|subgraphs|scripts)\//, "$1/")}:${frame.lineNumber + 1}`;
/** Time in each function including its callees, counted once per sample however deep. */
const inclusiveMicros = new Map<string, number>();
const selfMicros = new Map<number, number>();
let elapsed = 0;
let sampled = 0;
profile.samples.forEach((id, index) => {
  const delta = profile.timeDeltas[index] ?? 0;
  elapsed += delta;
  if (elapsed < skipMicros) return;
  sampled += delta;
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
  if (IDLE.has(byId.get(id)?.callFrame.functionName ?? "")) return;
  const seen = new Set<string>();
  for (let node: number | undefined = id; node !== undefined; node = parentOf.get(node)) {
    const frame = byId.get(node)?.callFrame;
    if (!frame) continue;
    const name = frameName(frame);
    if (seen.has(name)) continue;
    seen.add(name);
    inclusiveMicros.set(name, (inclusiveMicros.get(name) ?? 0) + delta);
  }
});
// Percentages are of busy time: idle time says nothing about where the work goes.
const total = [...selfMicros]
  .filter(([id]) => !IDLE.has(byId.get(id)?.callFrame.functionName ?? ""))
  .reduce((sum, [, value]) => sum + value, 0);
const functions = new Map<string, number>();
const packages = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const frame = byId.get(id)?.callFrame;
  if (!frame || IDLE.has(frame.functionName)) continue;
  const name = frameName(frame);
  functions.set(name, (functions.get(name) ?? 0) + micros);
  const pkg = packageOf(frame.url);
  packages.set(pkg, (packages.get(pkg) ?? 0) + micros);
}
const percent = (micros: number) => `${((100 * micros) / total).toFixed(1).padStart(5)}%`;
console.log(
  `${file}: ${(sampled / 1e6).toFixed(1)} s sampled, ${(total / 1e6).toFixed(1)} s busy (percentages of busy time)`,
);
console.log("by package (self time):");
for (const [name, micros] of [...packages].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${percent(micros)}  ${name}`);
}
console.log("by function (self time):");
for (const [name, micros] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${percent(micros)}  ${name}`);
}
console.log("by function (inclusive time, callees included):");
for (const [name, micros] of [...inclusiveMicros].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${percent(micros)}  ${name}`);
}
