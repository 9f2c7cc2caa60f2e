/**
 * `npm run citizen-token -- <identity number>`: prints a development citizen token (valid one
 * hour) for trying `myAccessLog`:
 *
 *   curl -s localhost:4000/graphql -H "authorization: Bearer $(npm run -s citizen-token -- 110105198503121015)" \
 *     -H 'content-type: application/json' -d '{"query":"{ myAccessLog { at desk purpose facts } }"}'
 */

import { isProduction } from "../common/environment.ts";
import { developmentCitizenToken } from "../gateway/security/citizen-token.ts";

const id = process.argv[2];
if (!id) {
  console.error("usage: npm run citizen-token -- <citizen identity number>");
  process.exit(2);
}
if (isProduction()) {
  console.error(
    "citizen-token: development only; in production citizens log in at the identity provider",
  );
  process.exit(1);
}
try {
  console.log(await developmentCitizenToken(id));
} catch (error) {
  console.error(`citizen-token: ${(error as Error).message}`);
  process.exit(1);
}
