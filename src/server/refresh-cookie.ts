// The refresh-token cookie of browser calls. HttpOnly: page script never reads it (an XSS cannot
// steal it). Secure and SameSite=Strict: sent only over TLS (or to localhost) and never with a
// request another site starts. Path=/ without Domain; over TLS it is named with the `__Host-`
// prefix, so browsers refuse it unless it was set exactly so by this host.
import type { BrowserSession } from "../services/call.js";

/** The cookie's name: `__Host-` prefixed when the gateway is reached over https. */
export function refreshCookieName(tls: boolean): string {
  return tls ? "__Host-identity-refresh" : "identity-refresh";
}

/** The value of cookie `name` in a Cookie request header (the first one, when sent twice). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value === "" ? undefined : value;
    }
  }
  return undefined;
}

const ATTRIBUTES = "Path=/; HttpOnly; Secure; SameSite=Strict";

/** One browser call's session: the cookie it brought and how to replace or delete it. */
export function browserSession(cookieHeader: string | undefined, name: string, now: () => number = Date.now): BrowserSession {
  return {
    refreshToken: readCookie(cookieHeader, name),
    storeCookie(refreshToken, expiresAt) {
      const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - now()) / 1000));
      return `${name}=${refreshToken}; ${ATTRIBUTES}; Max-Age=${maxAge}`;
    },
    clearCookie() {
      return `${name}=; ${ATTRIBUTES}; Max-Age=0`;
    },
  };
}
