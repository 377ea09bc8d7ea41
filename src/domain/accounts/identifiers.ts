// Normalisation and validation of the identifiers an account can be found by.
//
// Every identifier has exactly one canonical form: it is what is stored, what SQL compares by
// equality, what codes and limits are keyed by, and where codes are sent. So whatever string
// finds an account is the very address its codes go to, and no spelling that finds an account
// can route its code to a different mailbox (issue 10: a reset asked for `\u212Aim@...`, matched
// to `kim@...` by toLowerCase() but sent as typed, took the account).
import { domainToASCII, domainToUnicode } from "node:url";
import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import { NOT_IN_IDENTIFIERS, NOT_IN_PHONE_NUMBERS } from "./text.js";

const ASCII = /^[\x20-\x7e]*$/;
/** Not in a local part: what needs quoting in RFC 5322 (quoted local parts are not accepted). */
const LOCAL_PART = /^[^@<>()[\]",;:\\]+$/;
/** Not in a domain as typed: what the URL host parser would decode or cut at. */
const DOMAIN_AS_TYPED = /^[^@<>()[\]",;:\\%/?#]+$/;
/** An RFC 5321 domain after IDNA: letters, digits and hyphens, no hyphen at either end. */
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$/;
const MAX_LOCAL_PART_OCTETS = 64;
const MAX_ADDRESS_LENGTH = 254;

/** Only the spaces around a pasted identifier; anything else invisible is refused, not dropped. */
function trimSpaces(raw: string): string {
  return raw.replace(/^ +| +$/g, "");
}

/**
 * The local part as stored: ASCII is ASCII-lower-cased (no provider in use tells `Kim` from
 * `kim`, and the accounts never did). Anything else is NFC (`\u212A` KELVIN SIGN is canonically
 * `K`, so it is `k` here, not a mailbox of its own) and then kept exactly: never case-folded,
 * because Unicode case folding maps characters across scripts and onto ASCII. Compatibility
 * characters (fullwidth letters, ligatures, ...) are refused, as PRECIS IdentifierClass does
 * (RFC 8264): they only ever look like another address.
 */
function canonicalLocalPart(raw: string): string | undefined {
  if (!LOCAL_PART.test(raw)) return undefined;
  const local = raw.normalize("NFC");
  if (local.normalize("NFKC") !== local) return undefined;
  if (Buffer.byteLength(local, "utf8") > MAX_LOCAL_PART_OCTETS) return undefined;
  return ASCII.test(local) ? local.toLowerCase() : local;
}

/** The domain as its lower-case A-label form (UTS #46 via the WHATWG URL host parser). */
function canonicalDomain(raw: string): string | undefined {
  if (!DOMAIN_AS_TYPED.test(raw)) return undefined;
  const domain = domainToASCII(raw); // "" when UTS #46 refuses it
  const labels = domain.split(".");
  if (domain.length > 253 || labels.length < 2 || !labels.every((label) => DOMAIN_LABEL.test(label))) return undefined;
  // An A-label must decode (`xn--zz` does not): Node 20 refuses it above, Node 24's parser keeps
  // it, so check here that no label is still an A-label once decoded.
  if (domainToUnicode(domain).split(".").some((label) => label.startsWith("xn--"))) return undefined;
  // An all-digit last label is an IPv4 address (the parser also turns `0x7f.1` into one).
  return /^\d+$/.test(labels.at(-1)!) ? undefined : domain;
}

/** The canonical form of an email address (see above); undefined when it is not one. */
export function normalizeEmail(raw: string): string | undefined {
  const value = trimSpaces(raw);
  if (value.length > 4 * MAX_ADDRESS_LENGTH || NOT_IN_IDENTIFIERS.test(value)) return undefined;
  const at = value.lastIndexOf("@");
  if (at <= 0) return undefined;
  const local = canonicalLocalPart(value.slice(0, at));
  const domain = canonicalDomain(value.slice(at + 1));
  if (local === undefined || domain === undefined) return undefined;
  const address = `${local}@${domain}`;
  return address.length <= MAX_ADDRESS_LENGTH ? address : undefined;
}

/** Lower-case ASCII; checked before lower-casing, which would turn `\u212A` into `k`. */
export function normalizeUsername(raw: string): string | undefined {
  const value = trimSpaces(raw);
  return USERNAME_PATTERN.test(value) ? value.toLowerCase() : undefined;
}

/**
 * E.164 (`+14155550123`); undefined unless the number is valid for its country. Fullwidth and
 * other Unicode digits are the same digits to the parser, so they give the same number;
 * invisible and control characters are refused rather than skipped.
 */
export function normalizePhone(raw: string): string | undefined {
  const value = trimSpaces(raw);
  if (!value.startsWith("+") || value.length > 32 || NOT_IN_PHONE_NUMBERS.test(value)) return undefined;
  const parsed = parsePhoneNumberFromString(value);
  return parsed?.isValid() ? parsed.number : undefined;
}

export type Identifier =
  | { readonly kind: "email"; readonly value: string }
  | { readonly kind: "username"; readonly value: string }
  | { readonly kind: "phone"; readonly value: string };

/** Works out which kind of identifier a login string is; its value is the canonical form. */
export function parseIdentifier(raw: string): Identifier | undefined {
  const value = raw.trim();
  if (value.includes("@")) {
    const email = normalizeEmail(raw);
    return email === undefined ? undefined : { kind: "email", value: email };
  }
  if (value.startsWith("+")) {
    const phone = normalizePhone(raw);
    return phone === undefined ? undefined : { kind: "phone", value: phone };
  }
  const username = normalizeUsername(raw);
  return username === undefined ? undefined : { kind: "username", value: username };
}
