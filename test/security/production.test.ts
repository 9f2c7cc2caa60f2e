/**
 * Production start: the gateway refuses to run with the published demo desks or with security
 * off, and runs with a real desk registry — introspection and the landing page off.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEPARTMENTS } from "../../common/departments.ts";
import { DEVELOPMENT_DESKS_FILE, integer } from "../../gateway/config.ts";
import { hashKey } from "../../gateway/security/desks.ts";
import { exitOf, tempDataDir } from "../helpers.ts";

let data: ReturnType<typeof tempDataDir>;
let proofKeyFile: string;

beforeAll(() => {
  data = tempDataDir();
  // Production also wants verification's proof-signing key from a file; any Ed25519 key will do.
  proofKeyFile = join(data.dir, "proof-key.json");
  const { privateKey } = generateKeyPairSync("ed25519");
  writeFileSync(proofKeyFile, JSON.stringify(privateKey.export({ format: "jwk" })));
});

afterAll(() => {
  data.remove();
});

function productionEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const secrets = Object.fromEntries(
    DEPARTMENTS.map((department) => [
      `MIANZHENG_SECRET_${department.toUpperCase()}`,
      `secret-${department}-0123456789`,
    ]),
  );
  return {
    ...process.env,
    NODE_ENV: "production",
    PORT: "0",
    DATA_DIR: data.dir,
    PROOF_SIGNING_KEY_FILE: proofKeyFile,
    ...secrets,
    ...extra,
  };
}

/** A desk registry of one housing desk holding `key`, for one purpose with `scopes`. */
function housingDesk(name: string, key: string, scopes: string[]): string {
  const file = join(data.dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      desks: [
        {
          id: "housing",
          name: "Housing desk",
          keys: [`sha256:${hashKey(key)}`],
          purposes: [{ code: "housing", legalBasis: "x", scopes }],
        },
      ],
    }),
  );
  return file;
}

function startGateway(env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "scripts/gateway.ts"], { env, stdio: "pipe" });
}

describe("NODE_ENV=production", () => {
  it("refuses to start while a demo desk is registered", async () => {
    const { code, output } = await exitOf(
      startGateway(productionEnv({ DESKS_FILE: DEVELOPMENT_DESKS_FILE })),
    );
    expect(code).toBe(1);
    expect(output).toContain("refusing to start in production: demo desks dev-desk, dev-lottery");
  });

  it("refuses a demo key even under another desk's name", async () => {
    const file = housingDesk("disguised", "dev-desk-key", ["hukou:region"]);
    const { code, output } = await exitOf(startGateway(productionEnv({ DESKS_FILE: file })));
    expect(code).toBe(1);
    expect(output).toContain("demo desk housing");
  });

  it("refuses SECURITY=off and a missing desk registry", async () => {
    const off = await exitOf(startGateway(productionEnv({ SECURITY: "off", DESKS_FILE: "x" })));
    expect(off.code).toBe(1);
    expect(off.output).toContain("SECURITY=off is refused in production");
    const env = productionEnv({});
    delete env.DESKS_FILE;
    const missing = await exitOf(startGateway(env));
    expect(missing.code).toBe(1);
    expect(missing.output).toContain("DESKS_FILE must name the registered desks");
  });

  it("refuses a NODE_ENV it does not know, rather than running in development", async () => {
    const { code, output } = await exitOf(startGateway(productionEnv({ NODE_ENV: "prod" })));
    expect(code).toBe(1);
    expect(output).toContain('NODE_ENV must be "production", "development" or "test"');
  });

  it("refuses a switch it cannot read and a rate window that would switch the limit off", async () => {
    const security = await exitOf(startGateway(productionEnv({ SECURITY: "enabled" })));
    expect(security.code).toBe(1);
    expect(security.output).toContain("SECURITY must be on or off");
    const window = await exitOf(
      startGateway(productionEnv({ DESKS_FILE: "x", AUTH_FAILURES_WINDOW_MS: "0" })),
    );
    expect(window.code).toBe(1);
    expect(window.output).toContain(
      "AUTH_FAILURES_WINDOW_MS must be a whole number of at least 1000",
    );
    // The verification settings are read by the same rule: digits only.
    const desks = housingDesk("verify", "a-fifth-long-random-production-key", ["hukou:region"]);
    const subjects = await exitOf(
      startGateway(productionEnv({ DESKS_FILE: desks, VERIFY_MAX_SUBJECTS: "1e3" })),
    );
    expect(subjects.code).toBe(1);
    expect(subjects.output).toContain(
      'VERIFY_MAX_SUBJECTS must be a whole number of at least 1, got "1e3"',
    );
    const token = await exitOf(
      startGateway(productionEnv({ DESKS_FILE: desks, METRICS_TOKEN: "metrics" })),
    );
    expect(token.code).toBe(1);
    expect(token.output).toContain("METRICS_TOKEN must be at least 24 characters");
  });

  it("reads a number setting as digits and nothing else", () => {
    const read = (raw: string | undefined) => {
      const saved = process.env.MIANZHENG_TEST_NUMBER;
      if (raw === undefined) delete process.env.MIANZHENG_TEST_NUMBER;
      else process.env.MIANZHENG_TEST_NUMBER = raw;
      try {
        return integer("MIANZHENG_TEST_NUMBER", 7, 1);
      } finally {
        if (saved === undefined) delete process.env.MIANZHENG_TEST_NUMBER;
        else process.env.MIANZHENG_TEST_NUMBER = saved;
      }
    };
    expect(read(undefined)).toBe(7);
    expect(read("")).toBe(7);
    expect(read("1000")).toBe(1000);
    for (const raw of [
      "1e3",
      "0x10",
      " 10",
      "10 ",
      "10\n",
      "-1",
      "1.5",
      "0",
      "99999999999999999",
    ]) {
      expect(() => read(raw), raw).toThrow(
        "MIANZHENG_TEST_NUMBER must be a whole number of at least 1",
      );
    }
  });

  it("refuses a purpose granting every scope", async () => {
    const file = housingDesk("everything", "another-long-random-production-key", ["*"]);
    const { code, output } = await exitOf(startGateway(productionEnv({ DESKS_FILE: file })));
    expect(code).toBe(1);
    expect(output).toContain('housing/housing grants every scope ("*")');
  });

  it("refuses a purpose granting a scope no field or policy requires", async () => {
    const file = housingDesk("misspelt", "a-third-long-random-production-key", ["hukou:regoin"]);
    const { code, output } = await exitOf(startGateway(productionEnv({ DESKS_FILE: file })));
    expect(code).toBe(1);
    expect(output).toContain('housing/housing grants "hukou:regoin"');
    // The message names what the operator probably meant.
    expect(output).toContain("hukou:region");
  });

  it("refuses key sets fetched over plain http from another machine", async () => {
    const file = housingDesk("jwks", "a-fourth-long-random-production-key", ["hukou:region"]);
    const desk = await exitOf(
      startGateway(
        productionEnv({
          DESKS_FILE: file,
          DESK_JWKS_URL: "http://idp.example.gov.cn/jwks.json",
          DESK_JWT_ISSUER: "idp",
        }),
      ),
    );
    expect(desk.code).toBe(1);
    expect(desk.output).toContain("DESK_JWKS_URL must be an https URL");
    const citizen = await exitOf(
      startGateway(
        productionEnv({ DESKS_FILE: file, CITIZEN_JWKS_URL: "http://login.example.gov.cn/jwks" }),
      ),
    );
    expect(citizen.code).toBe(1);
    expect(citizen.output).toContain("CITIZEN_JWKS_URL must be an https URL");
  });

  it("starts with real desks, introspection and the landing page off", {
    timeout: 60_000,
  }, async () => {
    const file = housingDesk("desks", "a-long-random-production-key", ["hukou:region"]);
    const child = startGateway(productionEnv({ DESKS_FILE: file }));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let output = "";
        child.stdout?.on("data", (chunk) => {
          output += chunk;
          const match = /gateway listening at (http:\/\/\S+\/graphql)/.exec(output);
          if (match) resolve(match[1] as string);
        });
        child.on("exit", (code) => reject(new Error(`exited ${code}: ${output}`)));
      });
      const headers = {
        "content-type": "application/json",
        authorization: "Bearer a-long-random-production-key",
        "x-purpose": "housing",
      };
      const introspection = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify({ query: "{ __schema { types { name } } }" }),
      });
      expect(JSON.stringify(await introspection.json())).toContain("introspection");
      const page = await fetch(url, { headers: { accept: "text/html" } });
      expect(page.status).not.toBe(200);
      const answered = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify({ query: "{ __typename }" }),
      });
      expect(await answered.json()).toEqual({ data: { __typename: "Query" } });
      // Without METRICS_TOKEN a production gateway tells nobody which desks ask how much.
      const metrics = await fetch(url.replace(/\/graphql$/, "/metrics"), { headers });
      expect(metrics.status).toBe(404);
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.on("exit", resolve));
    }
  });
});
