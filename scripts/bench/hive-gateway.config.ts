/**
 * Hive Gateway's configuration for the benchmark (its CLI, `hive-gateway supergraph <file>
 * -c scripts/bench/hive-gateway.config.ts`): its defaults, plus the gateway signature every
 * department requires, computed in an `onFetch` hook over exactly the body Hive sends.
 *
 * Env: DEPARTMENT_URLS, a JSON object from department code to its subgraph URL.
 */
import { defineConfig } from "@graphql-hive/gateway";
import { type Department, isDepartment } from "../../common/departments.ts";
import { departmentSecret, SIGNATURE_HEADER, signBody } from "../../common/signing.ts";

const urls = JSON.parse(process.env.DEPARTMENT_URLS ?? "{}") as Record<string, string>;
const secretByUrl = new Map(
  Object.entries(urls)
    .filter((entry): entry is [Department, string] => isDepartment(entry[0]))
    .map(([department, url]) => [url, departmentSecret(department)]),
);

export const gatewayConfig = defineConfig({
  plugins: () => [
    {
      onFetch({ url, options, setOptions }) {
        const secret = secretByUrl.get(String(url));
        if (!secret) return;
        const body = typeof options.body === "string" ? options.body : "";
        setOptions({
          ...options,
          headers: {
            ...(options.headers as Record<string, string>),
            [SIGNATURE_HEADER]: signBody(secret, body),
          },
        });
      },
    },
  ],
});
