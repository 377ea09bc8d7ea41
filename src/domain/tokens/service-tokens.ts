// Service tokens: the OAuth 2.0 client-credentials grant over gRPC (TokenService.IssueServiceToken).
// A service account, already authenticated by the call policy (key or client certificate) and
// holding `tokens.issue`, asks for a token for one of the audiences its account allows; it gets
// an access token whose subject is the account (`service:<name>`) and whose scope is the
// account's permissions. Tokens are not stored: they live ACCESS_TOKEN_TTL_SECONDS, and a disabled
// account's tokens are refused through the revocation set like a person's (revocation.ts).
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import { AppError, invalidField } from "../errors.js";
import type { AccessTokens, IssuedAccessToken } from "./access-tokens.js";

/** What issuing needs to know of the calling service account. */
export interface ServiceTokenCaller {
  readonly name: string;
  readonly permissions: ReadonlySet<string>;
  readonly audiences: readonly string[];
}

export interface IssuedServiceToken extends IssuedAccessToken {
  readonly scope: readonly string[];
}

export interface ServiceTokens {
  issue(caller: ServiceTokenCaller, audience: string, client: ClientMeta): Promise<IssuedServiceToken>;
}

/** Longer audiences are refused before any comparison (an audience is a service's name or URI). */
const MAX_AUDIENCE_LENGTH = 255;

export function createServiceTokens(accessTokens: AccessTokens, audit: AuditLog): ServiceTokens {
  return {
    async issue(caller, audience, client) {
      if (audience === "") throw invalidField("audience", "REQUIRED", "is required");
      if (audience.length > MAX_AUDIENCE_LENGTH) throw invalidField("audience", "TOO_LONG", `must be at most ${MAX_AUDIENCE_LENGTH} characters`);
      // Exact match only: an audience is a name the account was granted, never a pattern.
      if (!caller.audiences.includes(audience)) {
        throw new AppError("AUDIENCE_NOT_ALLOWED", `service account ${caller.name} may not request audience ${JSON.stringify(audience)}`);
      }
      const scope = [...caller.permissions].sort();
      const issued = accessTokens.issueService({ service: caller.name, audience, scope });
      await audit.record({ userId: null, type: "SERVICE_TOKEN_ISSUED", client, details: { service: caller.name, audience } });
      return { ...issued, scope };
    },
  };
}
