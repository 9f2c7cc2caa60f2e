/**
 * Development citizen tokens: in production a citizen logs in at the government's identity
 * provider (its issuer and JWKS configured with CITIZEN_TOKEN_ISSUER / CITIZEN_JWKS_URL); in
 * development `npm run citizen-token -- <identity number>` signs one with the documented
 * development secret, so that `myAccessLog` can be tried.
 */
import { SignJWT } from "jose";
import { normalizePersonId } from "../../common/ids.ts";
import {
  CITIZEN_AUDIENCE,
  DEVELOPMENT_CITIZEN_ISSUER,
  DEVELOPMENT_CITIZEN_SECRET,
} from "../config.ts";

export async function developmentCitizenToken(
  citizenId: string,
  options: { secret?: string; issuer?: string; expiresIn?: string } = {},
): Promise<string> {
  const subject = normalizePersonId(citizenId);
  if (!subject) throw new Error(`"${citizenId}" is not a citizen identity number`);
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(subject)
    .setIssuer(options.issuer ?? process.env.CITIZEN_TOKEN_ISSUER ?? DEVELOPMENT_CITIZEN_ISSUER)
    .setAudience(process.env.CITIZEN_TOKEN_AUDIENCE ?? CITIZEN_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "1h")
    .sign(
      new TextEncoder().encode(
        options.secret ?? process.env.CITIZEN_TOKEN_SECRET ?? DEVELOPMENT_CITIZEN_SECRET,
      ),
    );
}
