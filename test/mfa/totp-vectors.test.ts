// RFC 6238 appendix B test vectors (SHA-1, 8 digits) through the library the service uses.
import { generateSync } from "otplib";
import { expect, it } from "vitest";

const secret = new TextEncoder().encode("12345678901234567890");
const vectors: Array<[number, string]> = [
  [59, "94287082"],
  [1111111109, "07081804"],
  [1111111111, "14050471"],
  [1234567890, "89005924"],
  [2000000000, "69279037"],
  [20000000000, "65353130"],
];

it.each(vectors)("T=%i gives %s", (epoch, expected) => {
  expect(generateSync({ secret, epoch, digits: 8, algorithm: "sha1", period: 30 })).toBe(expected);
});
