/**
 * `npm start`: the whole platform on one machine. Seeds a demo population when DATA_DIR holds no
 * department database, starts the six department subgraphs (4001–4006) and the gateway (PORT,
 * 4000) as separate processes, as they would run in production, and stops them all on Ctrl-C.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DEPARTMENTS, defaultPort } from "../common/departments.ts";
import { databasePath, dataDir } from "../common/sqlite.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const children = new Map<string, ChildProcess>();
let stopping = false;

function run(
  label: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, ...env },
  });
  children.set(label, child);
  child.on("exit", (code, signal) => {
    children.delete(label);
    if (!stopping) console.error(`[start] ${label} exited (${signal ?? `code ${code}`})`);
  });
  return child;
}

async function waitUntilReady(label: string, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!children.has(label)) throw new Error(`${label} exited before it was ready`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${label} was not ready within ${timeoutMs / 1000} s`);
}

function stopAll(exitCode: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children.values()) child.kill("SIGTERM");
  const check = setInterval(() => {
    if (children.size === 0) {
      clearInterval(check);
      process.exit(exitCode);
    }
  }, 50);
}

process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

const dir = dataDir();
if (!DEPARTMENTS.some((department) => existsSync(databasePath(department, dir)))) {
  const persons = process.env.SEED_PERSONS ?? "20000";
  console.log(`[start] ${dir} holds no department database: seeding ${persons} demo persons`);
  const seed = run("seed", "scripts/seed.ts", ["--persons", persons]);
  const code = await new Promise<number | null>((resolve) => seed.on("exit", resolve));
  if (code !== 0) {
    console.error("[start] seeding failed");
    process.exit(1);
  }
}

try {
  // Everything starts at once: the gateway plans from the supergraph file and needs no department
  // to start, so loading its modules overlaps with the departments' (start-up is mostly loading).
  const port = Number(process.env.PORT ?? 4000);
  for (const department of DEPARTMENTS) {
    run(department, "scripts/subgraph.ts", [department], { PORT: String(defaultPort(department)) });
  }
  run("gateway", "scripts/gateway.ts", [], { PORT: String(port) });
  await Promise.all([
    ...DEPARTMENTS.map((department) =>
      waitUntilReady(department, `http://127.0.0.1:${defaultPort(department)}/ready`),
    ),
    waitUntilReady("gateway", `http://127.0.0.1:${port}/ready`),
  ]);
  console.log(
    [
      "",
      "Mianzheng is running:",
      `  gateway    http://localhost:${port}/graphql   (open it in a browser for GraphiQL)`,
      ...DEPARTMENTS.map(
        (department) =>
          `  ${department.padEnd(10)} http://localhost:${defaultPort(department)}/graphql   (signed requests from the gateway only)`,
      ),
      `  data       ${dir}`,
      "Press Ctrl-C to stop.",
      "",
    ].join("\n"),
  );
} catch (error) {
  console.error(`[start] ${(error as Error).message}`);
  stopAll(1);
}
