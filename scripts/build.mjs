// @ts-check
/**
 * `npm run build`: bundles the long-running entry points (scripts/start.ts, gateway.ts,
 * subgraph.ts) with esbuild into `dist/`, one JavaScript file each, npm dependencies included.
 * `npm start`, `npm run gateway` and `npm run subgraph` run these bundles through scripts/run.mjs,
 * which rebuilds them first when a source they were built from, `package.json` or the installed
 * packages changed since (`isStale`). The sources stay the truth; `dist/` is never committed.
 *
 * Why: started through tsx, each process spent 1–2 s transpiling TypeScript and resolving and
 * reading some two thousand module files; a bundle is one file that Node compiles at once.
 *
 * Plain JavaScript, not TypeScript: it runs before anything is built, and loading tsx would
 * cost the time the bundle saves.
 *
 * What the bundle must keep working:
 * - `import.meta.url` in our sources still names the source file, so files found relative to it
 *   (`schema/`, `config/`, packages found through `createRequire`) are found as before;
 * - a worker thread started from `new URL("./x.mjs" or "./x.ts", import.meta.url)` becomes its
 *   own bundle next to the others, so it needs no TypeScript loader (its `tsx/esm/api`
 *   registration, needed only for sources, does nothing in a bundle);
 * - packages with a native addon (`better-sqlite3`, `sodium-native`) stay ordinary package imports.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const DIST = join(ROOT, "dist");
const INFO = join(DIST, "build.json");

/** Entry points: output name → source. */
const ENTRIES = {
  start: "scripts/start.ts",
  gateway: "scripts/gateway.ts",
  subgraph: "scripts/subgraph.ts",
};
/** Besides the sources a bundle was built from, these make it stale. */
const ALSO_WATCHED = ["package.json", "node_modules/.package-lock.json", "scripts/build.mjs"];

/**
 * Packages left out of the bundles, imported from `node_modules` as usual: those with a native
 * addon (`better-sqlite3`, `sodium-native`…), which find their compiled binary relative to their
 * own files, and optional ones, which may be missing.
 */
function externalPackages() {
  const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const native = Object.keys(manifest.dependencies ?? {}).filter((name) => {
    const dir = join(ROOT, "node_modules", name);
    return ["binding.gyp", "prebuilds", "binding.js"].some((file) => existsSync(join(dir, file)));
  });
  return [...native, ...Object.keys(manifest.optionalDependencies ?? {})];
}

/** `new URL("./worker.mjs", import.meta.url)`: a worker started from a module of ours. */
const WORKER_URL = /new URL\(\s*(["'])(\.\.?\/[^"']+\.(?:mjs|ts))\1\s*,\s*import\.meta\.url\s*\)/g;

/**
 * The output name of a worker module: its path below the root, flattened.
 * @param {string} file
 */
function workerName(file) {
  const path = relative(ROOT, file).replace(/\.(mjs|ts)$/, "");
  return `worker-${path.split(sep).join("-")}`;
}

/** True when `dist/` is missing or older than anything it was built from. */
export function isStale() {
  let info;
  let builtAt;
  try {
    info = JSON.parse(readFileSync(INFO, "utf8"));
    builtAt = statSync(INFO).mtimeMs;
  } catch {
    return true;
  }
  const esbuildVersion = JSON.parse(
    readFileSync(join(ROOT, "node_modules/esbuild/package.json"), "utf8"),
  ).version;
  if (info.esbuild !== esbuildVersion) return true;
  for (const file of [...info.inputs, ...ALSO_WATCHED]) {
    try {
      if (statSync(join(ROOT, file)).mtimeMs > builtAt) return true;
    } catch {
      return true;
    }
  }
  return false;
}

/** Bundles every entry point (and the workers they start) into `dist/`. */
export async function build() {
  const esbuild = await import("esbuild");
  const started = performance.now();
  const workers = new Map(); // source file → output name
  /** @type {import("esbuild").Plugin} */
  const sourceLocations = {
    name: "source-locations",
    setup(bundle) {
      bundle.onResolve({ filter: /^tsx\/esm\/api$/ }, () => ({
        path: "tsx-esm-api",
        namespace: "bundled",
      }));
      bundle.onLoad({ filter: /.*/, namespace: "bundled" }, () => ({
        // Everything in a bundle is JavaScript already: there is nothing to register.
        contents: "export function register() { return async () => {}; }",
        loader: "js",
      }));
      bundle.onLoad({ filter: /\.(ts|mjs)$/ }, async (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
        let contents = await readFile(args.path, "utf8");
        if (!contents.includes("import.meta.url")) return undefined;
        contents = contents.replace(WORKER_URL, (_match, _quote, path) => {
          const file = resolve(dirname(args.path), path);
          const name = workerName(file);
          workers.set(file, name);
          return `new URL("./${name}.mjs", import_meta_url_of_bundle)`;
        });
        const source = relative(DIST, args.path).split(sep).join("/");
        contents = contents
          .replaceAll("import.meta.url", `new URL(${JSON.stringify(source)}, import.meta.url).href`)
          .replaceAll("import_meta_url_of_bundle", "import.meta.url");
        return { contents, loader: args.path.endsWith(".ts") ? "ts" : "js" };
      });
    },
  };
  const external = externalPackages();
  /** @param {Record<string, string>} entryPoints */
  const bundle = (entryPoints) =>
    esbuild.build({
      entryPoints,
      absWorkingDir: ROOT,
      outdir: DIST,
      outExtension: { ".js": ".mjs" },
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      external,
      // CommonJS packages inside an ES module bundle still call `require` for Node's own modules.
      banner: {
        js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);',
      },
      define: { "process.env.MIANZHENG_BUNDLE": '"1"' },
      plugins: [sourceLocations],
      metafile: true,
      write: false,
      // Less to read and parse at every start (about a fifth of a start's CPU time); names are
      // kept, so stack traces stay readable.
      minifyWhitespace: true,
      minifySyntax: true,
      logLevel: "warning",
    });

  /** @type {Set<string>} */
  const inputs = new Set();
  /** @type {import("esbuild").OutputFile[]} */
  const outputs = [];
  /** @param {import("esbuild").BuildResult<{ metafile: true; write: false }>} result */
  const collect = (result) => {
    for (const input of Object.keys(result.metafile.inputs)) {
      if (!input.includes("node_modules/") && !input.includes(":")) inputs.add(input);
    }
    outputs.push(...result.outputFiles);
  };
  try {
    collect(await bundle(ENTRIES));
    // Workers may start workers of their own: bundle until no new one appears.
    const built = new Set();
    for (;;) {
      const pending = [...workers].filter(([file]) => !built.has(file));
      if (pending.length === 0) break;
      for (const [file] of pending) built.add(file);
      collect(await bundle(Object.fromEntries(pending.map(([file, name]) => [name, file]))));
    }
  } finally {
    // esbuild's service process would otherwise live as long as this one (all of `npm start`).
    await esbuild.stop();
  }

  // Each file is replaced whole (written aside, then renamed), so a process starting meanwhile,
  // or a second build running at the same time, never reads half a file.
  mkdirSync(DIST, { recursive: true });
  for (const output of outputs) {
    const aside = `${output.path}.${process.pid}.tmp`;
    writeFileSync(aside, output.contents);
    renameSync(aside, output.path);
  }
  const esbuildVersion = JSON.parse(
    readFileSync(join(ROOT, "node_modules/esbuild/package.json"), "utf8"),
  ).version;
  const info = { esbuild: esbuildVersion, inputs: [...inputs].sort() };
  writeFileSync(`${INFO}.${process.pid}.tmp`, `${JSON.stringify(info, null, 2)}\n`);
  renameSync(`${INFO}.${process.pid}.tmp`, INFO);
  const files = outputs.map((output) => basename(output.path)).join(", ");
  const ms = Math.round(performance.now() - started);
  console.error(`[build] dist/: ${files} (${ms} ms)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await build();
  } catch (error) {
    console.error(`[build] failed: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}
