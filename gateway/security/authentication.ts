/**
 * Who is asking. A request carries `Authorization: Bearer <credential>` and, for desks,
 * `X-Purpose: <purpose code>` and optionally `X-Case-Id`. The credential is one of:
 *
 * - a desk key, looked up by its sha256 in the desk registry;
 * - a desk JWT from the deployment's identity provider (`DESK_JWKS_URL`, issuer, audience), naming
 *   the registered desk in its `desk` (or `sub`) claim and optionally the purpose in `purpose`;
 * - a citizen token (a JWT from the citizen login, `CITIZEN_TOKEN_ISSUER`) whose `sub` is the
 *   citizen's identity number: it opens `myAccessLog` and nothing else.
 *
 * A missing or wrong credential is 401, a purpose the desk does not hold 403.
 */
import type { IncomingHttpHeaders } from "node:http";
import {
  createRemoteJWKSet,
  decodeJwt,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from "jose";
import { LRUCache } from "lru-cache";
import { ErrorCode } from "../../common/errors.ts";
import { normalizePersonId } from "../../common/ids.ts";
import type { SecurityConfig } from "../config.ts";
import type { Principal } from "../principal.ts";
import type { DeskRegistry } from "./desks.ts";

/** The scope a citizen token grants: reading one's own access log. */
export const CITIZEN_SCOPE = "citizen:self";
const CITIZEN_SCOPES: ReadonlySet<string> = new Set([CITIZEN_SCOPE]);

/** A request refused before anything ran: HTTP status, error code, message for the caller. */
export class AuthenticationFailure extends Error {
  constructor(
    readonly status: 400 | 401 | 403,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const unauthenticated = (message: string) =>
  new AuthenticationFailure(401, ErrorCode.Unauthenticated, message);
const forbidden = (message: string) => new AuthenticationFailure(403, ErrorCode.Forbidden, message);

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A case or application number as a desk quotes it: printable, at most 100 characters. */
function caseIdOf(raw: string | undefined): string | null {
  if (raw === undefined || raw === "") return null;
  if (raw.length > 100 || !/^[\p{L}\p{N}\p{P}\p{S} ]+$/u.test(raw)) {
    throw new AuthenticationFailure(
      400,
      ErrorCode.BadUserInput,
      "X-Case-Id must be at most 100 printable characters",
    );
  }
  return raw;
}

const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]*$/;

interface VerifiedToken {
  kind: "desk" | "citizen";
  payload: JWTPayload;
}

export class Authenticator {
  private readonly deskKeys: JWTVerifyGetKey | null;
  private readonly citizenKey: JWTVerifyGetKey | Uint8Array | null;
  /** Verified JWTs until they expire: signature checks are far dearer than a lookup. */
  private readonly verified = new LRUCache<string, VerifiedToken>({ max: 10_000 });

  constructor(
    private readonly registry: DeskRegistry,
    private readonly config: SecurityConfig,
  ) {
    this.deskKeys = config.deskJwt ? createRemoteJWKSet(new URL(config.deskJwt.jwksUrl)) : null;
    const citizen = config.citizen;
    this.citizenKey = citizen.jwksUrl
      ? createRemoteJWKSet(new URL(citizen.jwksUrl))
      : citizen.devSecret
        ? new TextEncoder().encode(citizen.devSecret)
        : null;
  }

  /** The principal of a request, or an AuthenticationFailure thrown. */
  async authenticate(headers: IncomingHttpHeaders): Promise<Principal> {
    const authorization = header(headers, "authorization");
    if (!authorization) {
      throw unauthenticated(
        "Authentication required: send Authorization: Bearer <desk key> and X-Purpose: <purpose code>",
      );
    }
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!match) throw unauthenticated("Authorization must be Bearer <desk key or token>");
    const credential = match[1] as string;

    // Desk keys first: a hash lookup costs far less than parsing a token.
    const desk = this.registry.byKey(credential);
    if (desk) return this.forPurpose(desk.id, header(headers, "x-purpose"), headers);
    if (!JWT_SHAPE.test(credential)) throw unauthenticated("Unknown desk key");

    const token = await this.verifyToken(credential);
    if (token.kind === "citizen") return this.citizen(token.payload);
    const deskId = String(token.payload.desk ?? token.payload.sub ?? "");
    const claimedPurpose =
      typeof token.payload.purpose === "string" ? token.payload.purpose : undefined;
    const given = header(headers, "x-purpose");
    if (claimedPurpose && given && given !== claimedPurpose) {
      throw forbidden(`X-Purpose "${given}" differs from the token's purpose "${claimedPurpose}"`);
    }
    if (!this.registry.desk(deskId)) throw unauthenticated("The token names no registered desk");
    return this.forPurpose(deskId, claimedPurpose ?? given, headers);
  }

  private forPurpose(
    deskId: string,
    purpose: string | undefined,
    headers: IncomingHttpHeaders,
  ): Principal {
    const desk = this.registry.desk(deskId);
    if (!desk) throw unauthenticated("Unknown desk");
    // Only a refusal names the desk's purposes: every request of a desk comes through here.
    const codes = () => [...desk.purposes.keys()].join(", ");
    if (!purpose) {
      throw forbidden(`X-Purpose is required: desk ${desk.id} is registered for ${codes()}`);
    }
    const principal = this.registry.principal(desk, purpose);
    if (!principal) {
      throw forbidden(
        `Desk ${desk.id} is not registered for purpose "${purpose}" (registered: ${codes()})`,
      );
    }
    const caseId = caseIdOf(header(headers, "x-case-id"));
    return caseId === null ? principal : { ...principal, caseId };
  }

  private citizen(payload: JWTPayload): Principal {
    const citizenId = normalizePersonId(String(payload.sub ?? ""));
    if (!citizenId) throw unauthenticated("The citizen token's subject is not an identity number");
    return {
      kind: "citizen",
      deskId: null,
      deskName: null,
      purpose: null,
      legalBasis: null,
      caseId: null,
      scopes: CITIZEN_SCOPES,
      citizenId,
    };
  }

  private async verifyToken(token: string): Promise<VerifiedToken> {
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.payload.exp === undefined || cached.payload.exp * 1000 > Date.now()) return cached;
      this.verified.delete(token);
    }
    let issuer: string | undefined;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw unauthenticated("The bearer token is not a valid JWT");
    }
    const { citizen, deskJwt } = this.config;
    let verified: VerifiedToken;
    try {
      if (this.citizenKey && citizen.issuer && issuer === citizen.issuer) {
        const options = {
          issuer: citizen.issuer,
          audience: citizen.audience,
          requiredClaims: ["exp", "sub"],
        };
        const { payload } =
          this.citizenKey instanceof Uint8Array
            ? await jwtVerify(token, this.citizenKey, { ...options, algorithms: ["HS256"] })
            : await jwtVerify(token, this.citizenKey, options);
        verified = { kind: "citizen", payload };
      } else if (this.deskKeys && deskJwt && issuer === deskJwt.issuer) {
        const { payload } = await jwtVerify(token, this.deskKeys, {
          issuer: deskJwt.issuer,
          audience: deskJwt.audience,
          requiredClaims: ["exp"],
        });
        verified = { kind: "desk", payload };
      } else {
        throw unauthenticated("The bearer token's issuer is not trusted");
      }
    } catch (error) {
      if (error instanceof AuthenticationFailure) throw error;
      if (error instanceof joseErrors.JOSEError) {
        throw unauthenticated(`The bearer token was refused (${error.code})`);
      }
      throw error;
    }
    this.verified.set(token, verified);
    return verified;
  }
}
