/**
 * The page a developer sees when opening the gateway in a browser: an embedded GraphiQL served
 * from npm packages (it works offline, no CDN) and a link to Apollo Sandbox.
 */

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ErrorCode } from "../common/errors.ts";
import { dataDir } from "../common/sqlite.ts";
import { JSON_MEDIA, sendRequestError } from "./http.ts";

const require = createRequire(import.meta.url);

// Files inside packages whose `exports` do not list them: found from the package's own folder.
const ASSETS: Record<string, { pkg: string; file: string; type: string }> = {
  "react.js": { pkg: "react", file: "umd/react.production.min.js", type: "text/javascript" },
  "react-dom.js": {
    pkg: "react-dom",
    file: "umd/react-dom.production.min.js",
    type: "text/javascript",
  },
  "graphiql.js": { pkg: "graphiql", file: "graphiql.min.js", type: "text/javascript" },
  "graphiql.css": { pkg: "graphiql", file: "graphiql.min.css", type: "text/css" },
};

function packageFile(pkg: string, file: string): string {
  return join(dirname(require.resolve(`${pkg}/package.json`)), file);
}

const DEVELOPMENT_HEADERS = JSON.stringify(
  { Authorization: "Bearer dev-desk-key", "X-Purpose": "demo" },
  null,
  2,
);

/** Text for HTML: the endpoint comes from the request's Host header, which the client chose. */
function html(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (character) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[
        character
      ] as string,
  );
}

/** JSON inside a `<script>`: no `</script>` (nor line separators) can end or break it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function page(endpoint: string, query: string, developmentHeaders: boolean): string {
  const sandbox = `https://studio.apollographql.com/sandbox/explorer?endpoint=${encodeURIComponent(endpoint)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mianzheng 免证 — federated government data gateway</title>
<link rel="stylesheet" href="/graphiql/graphiql.css">
<style>
  body { margin: 0; height: 100vh; display: flex; flex-direction: column; font-family: system-ui, sans-serif; }
  header { padding: 8px 16px; background: #8b0000; color: #fff; display: flex; gap: 24px; align-items: baseline; }
  header a { color: #ffd; }
  #graphiql { flex: 1; }
</style>
</head>
<body>
<header>
  <strong>Mianzheng 免证</strong>
  <span>GraphQL endpoint: <code>${html(endpoint)}</code></span>
  <a href="${html(sandbox)}" target="_blank" rel="noopener">Open in Apollo Sandbox</a>
  <span>${developmentHeaders ? "Development headers are pre-filled in the Headers tab." : "Put your desk key and purpose in the Headers tab."}</span>
</header>
<div id="graphiql">Loading GraphiQL…</div>
<script src="/graphiql/react.js"></script>
<script src="/graphiql/react-dom.js"></script>
<script src="/graphiql/graphiql.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({ url: ${scriptJson(endpoint)} });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultHeaders: ${scriptJson(developmentHeaders ? DEVELOPMENT_HEADERS : "")},
    // A real desk key typed in production must not stay in the browser's storage.
    shouldPersistHeaders: ${developmentHeaders},
    defaultQuery: ${scriptJson(query)},
  }));
</script>
</body>
</html>`;
}

/**
 * The README's example: one person's facts from all six departments in one request. The id is a
 * demo subject of the seeded population when there is one (a legal representative: every
 * department has something to say about them).
 */
export function exampleQuery(id = "11010519491231002X"): string {
  return `# One request, six departments: no certificate needed.
query PersonFacts($id: ID! = "${id}") {
  person(id: $id) {
    id
    name                                    # hukou
    hukouRegion { code name }               # hukou
    hasValidDriverLicense                   # traffic
    maritalStatus                           # civil
    legalRepresentativeOf { uscc name }     # market
    consecutiveInsuredMonths(region: "110000", upTo: "2026-10")    # social
    incomeTaxYears(region: "110000", fromYear: 2021, toYear: 2025) # tax
  }
}
`;
}

/** A demo subject from `DATA_DIR/demo-subjects.json` (written by `npm run seed`), if any. */
function demoSubject(): string | undefined {
  try {
    const demo = JSON.parse(readFileSync(join(dataDir(), "demo-subjects.json"), "utf8")) as {
      subjects?: Record<string, { ids?: string[] }>;
    };
    return demo.subjects?.legalRepresentative?.ids?.[0];
  } catch {
    return undefined;
  }
}

function wantsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? "";
  return accept.includes("text/html");
}

/**
 * `developmentHeaders`: pre-fill the development desk's key (never in production, where the
 * page shows when `LANDING_PAGE` turns it on).
 */
export function registerLandingPage(
  app: FastifyInstance,
  { developmentHeaders }: { developmentHeaders: boolean },
): void {
  const query = exampleQuery(demoSubject());
  const files = new Map(
    Object.entries(ASSETS).map(([name, asset]) => [
      name,
      { body: readFileSync(packageFile(asset.pkg, asset.file)), type: asset.type },
    ]),
  );
  const endpointOf = (request: FastifyRequest) => `${request.protocol}://${request.host}/graphql`;
  const sendPage = (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .type("text/html; charset=utf-8")
      .header("cache-control", "no-store") // built from the request's Host header
      .send(page(endpointOf(request), query, developmentHeaders));

  app.get("/", sendPage);
  // Browsers opening the endpoint itself get the page; GraphQL clients never ask for HTML.
  app.addHook("onRequest", async (request, reply) => {
    if (
      request.method === "GET" &&
      request.url.split("?")[0] === "/graphql" &&
      wantsHtml(request)
    ) {
      return sendPage(request, reply);
    }
  });
  app.get("/graphiql/:file", async (request, reply) => {
    const file = files.get((request.params as { file: string }).file);
    if (!file) {
      return sendRequestError(reply, JSON_MEDIA, 404, [
        { message: "Not found", extensions: { code: ErrorCode.NotFound } },
      ]);
    }
    return reply.type(file.type).header("cache-control", "public, max-age=86400").send(file.body);
  });
}
