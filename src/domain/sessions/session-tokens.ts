// Issues the token pair of a session: starting one at sign-in, and rotating it on refresh.
import type { Tx, UserRow } from "../../store/index.js";
import type { ClientMeta } from "../audit/audit.js";
import type { Sessions } from "./sessions.js";
import type { AccessTokens } from "../tokens/access-tokens.js";

export interface TokenPair {
  readonly accessToken: string;
  readonly accessTokenExpiresAt: Date;
  readonly refreshToken: string;
  readonly refreshTokenExpiresAt: Date;
  readonly sessionId: string;
}

export interface SessionTokens {
  start(tx: Tx, user: UserRow, amr: readonly string[], client: ClientMeta): Promise<TokenPair>;
  refresh(refreshToken: string, client: ClientMeta): Promise<TokenPair>;
  /** New tokens of a session that proved `amr` again (Sessions.renew); undefined when it is not live. */
  renew(tx: Tx, user: UserRow, sessionId: string, amr: readonly string[]): Promise<TokenPair | undefined>;
}

export function createSessionTokens(sessions: Sessions, accessTokens: AccessTokens): SessionTokens {
  async function pair(user: Pick<UserRow, "id" | "role" | "username">, session: { sessionId: string; authTime: Date }, amr: readonly string[], refreshToken: string, refreshTokenExpiresAt: Date): Promise<TokenPair> {
    const { sessionId, authTime } = session;
    const access = await accessTokens.issue({ userId: user.id, sessionId, authTime, role: user.role, username: user.username, amr });
    return { accessToken: access.token, accessTokenExpiresAt: access.expiresAt, refreshToken, refreshTokenExpiresAt, sessionId };
  }

  return {
    async start(tx, user, amr, client) {
      const session = await sessions.create(tx, user.id, amr, client);
      return pair(user, session, amr, session.refreshToken, session.refreshExpiresAt);
    },
    async renew(tx, user, sessionId, amr) {
      const session = await sessions.renew(tx, user.id, sessionId, amr);
      return session && pair(user, session, amr, session.refreshToken, session.refreshExpiresAt);
    },
    async refresh(refreshToken, client) {
      const rotated = await sessions.rotate(refreshToken, client);
      const user = { id: rotated.userId, role: rotated.role, username: rotated.username };
      return pair(user, rotated, rotated.amr, rotated.refreshToken, rotated.refreshExpiresAt);
    },
  };
}
