/**
 * Who may call the gateway: desks by key or by JWT from a configured identity provider, each for a
 * registered purpose; citizens by token, for their access log only. Refusals are 401/403 with a
 * GraphQL-style body and no data.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEVELOPMENT_CITIZEN_ISSUER } from "../../gateway/config.ts";
import { developmentCitizenToken } from "../../gateway/security/citizen-token.ts";
import { writeFixtures, ZHANG_WEI } from "../fixtures.ts";
import { tempDataDir } from "../helpers.ts";
import { DEV_DESK, type Platform, startPlatform, tearDown } from "../platform.ts";

let platform: Platform;
let data: ReturnType<typeof tempDataDir>;
let jwks: Server;
let signDeskToken: (claims: Record<string, unknown>, issuer?: string) => Promise<string>;
const ISSUER = "https://idp.example.gov.cn";

const PERSON = `{ person(id: "${ZHANG_WEI}") { hasValidDriverLicense(on: "2026-11-01") } }`;

beforeAll(async () => {
  data = tempDataDir();
  writeFixtures(data.dir);
  // The deployment's identity provider: a key pair whose public half is served as a JWKS.
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const publicJwk = { ...(await exportJWK(publicKey)), kid: "idp-1", alg: "ES256" };
  jwks = createServer((_request, response) => {
    response.setHeader("content-type", "application/json");
    response.end(JSON.stringify({ keys: [publicJwk] }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
  signDeskToken = (claims, issuer = ISSUER) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "ES256", kid: "idp-1" })
      .setIssuer(issuer)
      .setAudience("mianzheng")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
  platform = await startPlatform(data.dir, {
    config: { security: { deskJwt: { jwksUrl, issuer: ISSUER, audience: "mianzheng" } } },
  });
});

afterAll(async () => {
  jwks?.close();
  await tearDown(platform, data.remove);
});

describe("desks", () => {
  it("answers the development desk with its key and purpose", async () => {
    const { status, body } = await platform.query(PERSON);
    expect(status).toBe(200);
    expect(body).toEqual({ data: { person: { hasValidDriverLicense: true } } });
  });

  it("refuses a request without credentials: 401, no data", async () => {
    const response = await fetch(platform.url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
      body: JSON.stringify({ query: PERSON }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="mianzheng"');
    expect(response.headers.get("content-type")).toContain("application/graphql-response+json");
    const body = await response.json();
    expect(body).toEqual({
      errors: [
        {
          message: expect.stringContaining("Authorization: Bearer"),
          extensions: { code: "UNAUTHENTICATED" },
        },
      ],
    });
    expect(body).not.toHaveProperty("data");
  });

  it("refuses a wrong key and a malformed Authorization header with 401", async () => {
    const wrong = await platform.query(
      PERSON,
      {},
      {
        authorization: "Bearer not-a-desk-key",
        "x-purpose": "demo",
      },
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({
      errors: [{ message: "Unknown desk key", extensions: { code: "UNAUTHENTICATED" } }],
    });
    const basic = await platform.query(PERSON, {}, { authorization: "Basic ZGV2OmRldg==" });
    expect(basic.status).toBe(401);
  });

  it("refuses a purpose the desk is not registered for, and a missing purpose, with 403", async () => {
    const other = await platform.query(
      PERSON,
      {},
      {
        authorization: "Bearer dev-lottery-key",
        "x-purpose": "demo",
      },
    );
    expect(other.status).toBe(403);
    expect(other.body.data).toBeUndefined();
    expect(other.body.errors?.[0]).toEqual({
      message: 'Desk dev-lottery is not registered for purpose "demo" (registered: car-lottery)',
      extensions: { code: "FORBIDDEN" },
    });
    const missing = await platform.query(PERSON, {}, { authorization: "Bearer dev-desk-key" });
    expect(missing.status).toBe(403);
    expect(missing.body.errors?.[0]?.message).toContain("X-Purpose is required");
  });

  it("refuses a malformed case id with 400", async () => {
    const { status, body } = await platform.query(
      PERSON,
      {},
      {
        authorization: "Bearer dev-desk-key",
        "x-purpose": "demo",
        "x-case-id": "x".repeat(101),
      },
    );
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("accepts a JWT from the configured identity provider naming a registered desk", async () => {
    const token = await signDeskToken({ desk: "dev-lottery", purpose: "car-lottery" });
    const { status, body } = await platform.query(PERSON, {}, { authorization: `Bearer ${token}` });
    expect(status).toBe(200);
    expect(body).toEqual({ data: { person: { hasValidDriverLicense: true } } });
    // The purpose can come from X-Purpose instead of a claim.
    const headerPurpose = await signDeskToken({ desk: "dev-lottery" });
    const second = await platform.query(
      PERSON,
      {},
      {
        authorization: `Bearer ${headerPurpose}`,
        "x-purpose": "car-lottery",
      },
    );
    expect(second.status).toBe(200);
  });

  it("refuses JWTs from another issuer, for an unknown desk, or contradicting X-Purpose", async () => {
    const foreign = await signDeskToken(
      { desk: "dev-lottery", purpose: "car-lottery" },
      "https://evil",
    );
    expect((await platform.query(PERSON, {}, { authorization: `Bearer ${foreign}` })).status).toBe(
      401,
    );
    const unknown = await signDeskToken({ desk: "nobody", purpose: "car-lottery" });
    expect((await platform.query(PERSON, {}, { authorization: `Bearer ${unknown}` })).status).toBe(
      401,
    );
    const contradicting = await signDeskToken({ desk: "dev-lottery", purpose: "car-lottery" });
    const response = await platform.query(
      PERSON,
      {},
      {
        authorization: `Bearer ${contradicting}`,
        "x-purpose": "demo",
      },
    );
    expect(response.status).toBe(403);
    const tampered = `${contradicting.slice(0, -4)}AAAA`;
    expect((await platform.query(PERSON, {}, { authorization: `Bearer ${tampered}` })).status).toBe(
      401,
    );
  });
});

describe("what needs no credentials", () => {
  it("serves /health, /ready, the landing page and its assets to anyone", async () => {
    const base = platform.url.replace(/\/graphql$/, "");
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    expect((await fetch(platform.url, { headers: { accept: "text/html" } })).status).toBe(200);
    expect((await fetch(`${base}/graphiql/graphiql.css`)).status).toBe(200);
  });

  it("answers a browser's CORS preflight with the auth headers allowed", async () => {
    const response = await fetch(platform.url, {
      method: "OPTIONS",
      headers: {
        origin: "https://studio.apollographql.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,x-purpose,content-type",
      },
    });
    expect(response.status).toBe(204);
    const allowed = response.headers.get("access-control-allow-headers") ?? "";
    expect(allowed).toContain("authorization");
    expect(allowed).toContain("x-purpose");
  });

  it("lets Apollo Sandbox and pages on this machine call it from a browser, not any web page", async () => {
    const preflight = (origin: string) =>
      fetch(platform.url, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,x-purpose,content-type",
        },
      });
    for (const origin of ["https://studio.apollographql.com", "http://localhost:3000"]) {
      const response = await preflight(origin);
      expect(response.headers.get("access-control-allow-origin")).toBe(origin);
    }
    for (const origin of ["https://evil.example", "null", "http://localhost.evil.example"]) {
      const response = await preflight(origin);
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    }
  });
});

describe("citizens", () => {
  it("may read their access log but nothing from the registers", async () => {
    const token = await developmentCitizenToken(ZHANG_WEI);
    const citizen = { authorization: `Bearer ${token}` };
    const log = await platform.query("{ myAccessLog { deskId } }", {}, citizen);
    expect(log.status).toBe(200);
    expect(log.body.errors).toBeUndefined();
    const registers = await platform.query(`{ person(id: "${ZHANG_WEI}") { id } }`, {}, citizen);
    expect(registers.body.data).toEqual({ person: null });
    expect(registers.body.errors?.[0]?.extensions).toMatchObject({
      code: "FORBIDDEN",
      field: "Query.person",
    });
  });

  it("refuses a citizen token signed with another secret or expired", async () => {
    const forged = await developmentCitizenToken(ZHANG_WEI, { secret: "guessed" });
    expect(
      (await platform.query("{ myAccessLog { at } }", {}, { authorization: `Bearer ${forged}` }))
        .status,
    ).toBe(401);
    const expired = await developmentCitizenToken(ZHANG_WEI, { expiresIn: "-1m" });
    expect(
      (await platform.query("{ myAccessLog { at } }", {}, { authorization: `Bearer ${expired}` }))
        .status,
    ).toBe(401);
  });
});

describe("an address that keeps failing to authenticate", () => {
  it("is refused, whatever it sends, once it failed the limit's number of times", async () => {
    const own = tempDataDir();
    writeFixtures(own.dir);
    const guarded = await startPlatform(own.dir, {
      config: { security: { failedAuthentications: { max: 3, windowMs: 60_000 } } },
    });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const guess = await guarded.query(
          PERSON,
          {},
          { authorization: `Bearer guess-${attempt}`, "x-purpose": "demo" },
        );
        expect(guess.status).toBe(401);
      }
      // The right key, from that address, within the window: refused before it is even looked at.
      const response = await fetch(guarded.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...DEV_DESK },
        body: JSON.stringify({ query: PERSON }),
      });
      expect(response.status).toBe(429);
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await response.json()).toEqual({
        errors: [
          {
            message: expect.stringMatching(
              /^Too many failed authentications from this address; retry in \d+ s$/,
            ),
            extensions: { code: "RATE_LIMITED" },
          },
        ],
      });
    } finally {
      await guarded.close();
      own.remove();
    }
  });
});

describe("a configuration with one issuer for desks and citizens", () => {
  it("is refused at start, naming both settings", async () => {
    const own = tempDataDir();
    try {
      await expect(
        startPlatform(own.dir, {
          config: {
            security: {
              deskJwt: {
                jwksUrl: "http://127.0.0.1:9/jwks.json",
                issuer: DEVELOPMENT_CITIZEN_ISSUER,
                audience: "mianzheng",
              },
            },
          },
        }),
      ).rejects.toThrow(/DESK_JWT_ISSUER and CITIZEN_TOKEN_ISSUER are both/);
    } finally {
      own.remove();
    }
  });
});
