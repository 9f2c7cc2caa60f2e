/**
 * The benchmark's baseline: the stock pairing `@apollo/server` 5 + `@apollo/gateway` 2.14 with
 * their defaults (standalone server, Apollo's request pipeline, `RemoteGraphQLDataSource` with its
 * default fetcher). The only addition is the gateway signature every department requires, computed
 * over exactly the bytes the default fetcher sends.
 *
 * Env: PORT, SUPERGRAPH_FILE (a planner SDL: `@apollo/gateway` refuses a `for: SECURITY` link).
 */
import { readFileSync } from "node:fs";
import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { isDepartment } from "../../common/departments.ts";
import { departmentSecret, SIGNATURE_HEADER, signBody } from "../../common/signing.ts";

type Fetcher = RemoteGraphQLDataSource["fetcher"];

/** Apollo's data source, its default fetcher wrapped to sign the body it is about to send. */
class SignedDataSource extends RemoteGraphQLDataSource {
  constructor(url: string, secret: string) {
    super({ url });
    const send: Fetcher = this.fetcher;
    this.fetcher = ((input, init) => {
      const body = typeof init?.body === "string" ? init.body : "";
      return send(input, {
        ...init,
        headers: {
          ...(init?.headers as Record<string, string>),
          [SIGNATURE_HEADER]: signBody(secret, body),
        },
      });
    }) as Fetcher;
  }
}

const supergraphFile = process.env.SUPERGRAPH_FILE;
if (!supergraphFile) throw new Error("SUPERGRAPH_FILE must name the supergraph to serve");
const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(supergraphFile, "utf8"),
  buildService: ({ name, url }) => {
    // The platform's own subgraphs (ledger, verification) live inside mianzheng; the benchmark's
    // queries never reach them, so the baseline keeps Apollo's plain data source for them.
    if (!isDepartment(name)) return new RemoteGraphQLDataSource({ url });
    return new SignedDataSource(url as string, departmentSecret(name));
  },
});
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(process.env.PORT ?? 4100), host: "127.0.0.1" },
});
console.log(`apollo baseline listening at ${url}`);
