// Normalisation and validation of the identifiers an account can be found by.
import { parsePhoneNumberFromString } from "libphonenumber-js/max";

const EMAIL_PATTERN = /^[^\s@<>()",;:\\]+@[^\s@<>()",;:\\]+\.[^\s@<>()",;:\\]+$/;
const USERNAME_PATTERN = /^[a-z0-9][a-z0-9._-]{2,31}$/;

/** Trims and lower-cases the domain; returns undefined when it is not an address. */
export function normalizeEmail(raw: string): string | undefined {
  const value = raw.trim();
  if (value.length > 254 || !EMAIL_PATTERN.test(value)) return undefined;
  const at = value.lastIndexOf("@");
  return `${value.slice(0, at)}@${value.slice(at + 1).toLowerCase()}`;
}

export function normalizeUsername(raw: string): string | undefined {
  const value = raw.trim().toLowerCase();
  return USERNAME_PATTERN.test(value) ? value : undefined;
}

/** E.164 (`+14155550123`); undefined unless the number is valid for its country. */
export function normalizePhone(raw: string): string | undefined {
  const value = raw.trim();
  if (!value.startsWith("+") || value.length > 32) return undefined;
  const parsed = parsePhoneNumberFromString(value);
  return parsed?.isValid() ? parsed.number : undefined;
}

export type Identifier =
  | { readonly kind: "email"; readonly value: string }
  | { readonly kind: "username"; readonly value: string }
  | { readonly kind: "phone"; readonly value: string };

/** Works out which kind of identifier a login string is. */
export function parseIdentifier(raw: string): Identifier | undefined {
  const value = raw.trim();
  if (value.includes("@")) {
    const email = normalizeEmail(value);
    return email === undefined ? undefined : { kind: "email", value: email };
  }
  if (value.startsWith("+")) {
    const phone = normalizePhone(value);
    return phone === undefined ? undefined : { kind: "phone", value: phone };
  }
  const username = normalizeUsername(value);
  return username === undefined ? undefined : { kind: "username", value: username };
}
