// Certificate identities of service accounts: a SPIFFE ID (a URI SAN) or a subject DN.

/** spiffe://<trust domain>/<path>, per the SPIFFE ID specification (lower-case trust domain, no query, fragment, port or user). */
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]{1,255}(\/[A-Za-z0-9._-]+)+$/;

export function isSpiffeId(value: string): boolean {
  if (value.length > 2048 || !SPIFFE_ID.test(value)) return false;
  // "." and ".." segments are forbidden.
  return value.slice("spiffe://".length).split("/").slice(1).every((segment) => segment !== "." && segment !== "..");
}

/** One `attr=value` pair; values holding commas, slashes or newlines are not supported. */
const RDN = /^[A-Za-z][A-Za-z0-9.]*=[^,\n=]+$/;

/**
 * A subject as node prints a certificate's (`O=Example\nCN=billing`, in certificate order), from
 * that form or the comma-separated one an operator types (`O=Example,CN=billing`); undefined when
 * it is not a list of attr=value pairs.
 */
export function normalizeSubject(value: string): string | undefined {
  const parts = value.split(/[\n,]/).map((part) => part.trim());
  if (parts.length === 0 || parts.length > 32 || !parts.every((part) => RDN.test(part))) return undefined;
  return parts.map((part) => {
    const at = part.indexOf("=");
    return `${part.slice(0, at).toUpperCase()}=${part.slice(at + 1).trim()}`;
  }).join("\n");
}
