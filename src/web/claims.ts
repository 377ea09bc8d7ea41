// The access token's header and claims, decoded for display only: the page trusts the
// gateway's answers, not its own reading of the token (it has no reason to verify it).
export interface DecodedToken {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}

function decodePart(part: string): Record<string, unknown> {
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
}

export function decodeToken(token: string): DecodedToken | undefined {
  const [header, claims] = token.split(".");
  if (header === undefined || claims === undefined) return undefined;
  try {
    return { header: decodePart(header), claims: decodePart(claims) };
  } catch {
    return undefined;
  }
}

/** `iat`/`exp`/`nbf` as readable times next to the numbers. */
export function describeClaims(claims: Record<string, unknown>): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(claims)) {
    const time = ["iat", "exp", "nbf"].includes(name) && typeof value === "number" ? `  (${new Date(value * 1000).toLocaleString()})` : "";
    lines.push(`${name}: ${JSON.stringify(value)}${time}`);
  }
  return lines.join("\n");
}
