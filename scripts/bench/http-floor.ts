/**
 * The floor of `npm run bench:call`: Fastify alone on its port (argument 1), answering every POST
 * to `/graphql` with a fixed `_entities` answer of as many entities as argument 2 says. No
 * department server answers a call for less CPU than this.
 */
import Fastify from "fastify";
import { serveUntilSignal } from "../../common/serve.ts";

const [port = "0", entities = "1"] = process.argv.slice(2);
const answer = {
  data: {
    _entities: Array.from({ length: Number(entities) }, () => ({ maritalStatus: "MARRIED" })),
  },
};
const app = Fastify({ logger: { level: "warn" } });
app.post("/graphql", async () => answer);
app.get("/ready", async () => ({ status: "ready" }));
// Stopped by a signal, it exits normally, so that `--cpu-prof` writes its profile.
await serveUntilSignal(app, Number(port), "127.0.0.1");
