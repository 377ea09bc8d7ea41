// The canonical forms of identifiers (no database): one form per address, look-alikes either
// refused or mapped to the very address they look like, never to a different mailbox.
import { describe, expect, it } from "vitest";
import { normalizeEmail, normalizePhone, normalizeUsername, parseIdentifier } from "../../src/domain/accounts/identifiers.js";
import { loginSubject } from "../../src/domain/limits/login-limits.js";
import { hasControlCharacters } from "../../src/domain/accounts/text.js";

describe("normalizeEmail", () => {
  it("lower-cases an ASCII address, local part and domain, and trims surrounding spaces", () => {
    expect(normalizeEmail("  Kim.Doe+Tag@Example.ORG ")).toBe("kim.doe+tag@example.org");
    expect(normalizeEmail("kim@example.org")).toBe("kim@example.org");
  });

  it("is idempotent", () => {
    for (const raw of ["Kim@Example.org", "Jörg@Bücher.de", "\u212Aim@example.org", "user@ｅxample.org"]) {
      const once = normalizeEmail(raw)!;
      expect(once).toBeDefined();
      expect(normalizeEmail(once)).toBe(once);
    }
  });

  it("maps U+212A KELVIN SIGN and U+212B ANGSTROM SIGN to what they canonically are (NFC)", () => {
    // K and Å: the very address they look like, so a code goes to that mailbox, not a look-alike.
    expect(normalizeEmail("\u212Aim@example.org")).toBe("kim@example.org");
    expect(normalizeEmail("\u212Bsa@example.org")).toBe("\u00C5sa@example.org");
    expect(normalizeEmail("A\u030Asa@example.org")).toBe("\u00C5sa@example.org");
  });

  it("keeps a non-ASCII local part exactly: never case-folded onto other characters or ASCII", () => {
    expect(normalizeEmail("\u0130m@example.org")).toBe("\u0130m@example.org"); // İ, not i or i̇
    expect(normalizeEmail("k\u0131m@example.org")).toBe("k\u0131m@example.org"); // dotless ı, not i
    expect(normalizeEmail("Jörg@example.org")).toBe("Jörg@example.org");
    expect(normalizeEmail("KIM\u00E9@example.org")).toBe("KIM\u00E9@example.org");
  });

  it("refuses compatibility characters in the local part: fullwidth letters, ligatures, one-dot leaders", () => {
    for (const raw of ["\uFF4Bim@example.org", "\uFF2Bim@example.org", "\uFB01sh@example.org", "kim\u2024doe@example.org", "k\u2160m@example.org"]) {
      expect(normalizeEmail(raw), JSON.stringify(raw)).toBeUndefined();
    }
  });

  it("refuses control, zero-width, bidi and other invisible characters anywhere", () => {
    const invisible = ["\u200B", "\u200C", "\u200D", "\u2060", "\uFEFF", "\u00AD", "\u202E", "\u202D", "\u2066", "\u200E", "\u061C", "\u180E", "\u3164", "\uFE0F", "\u034F", "\u0000", "\u001B", "\r", "\n", "\t", "\u2028", "\u00A0", "\u3000", "\uE000"];
    for (const ch of invisible) {
      for (const raw of [`k${ch}im@example.org`, `kim@exa${ch}mple.org`, `kim${ch}@example.org`, `kim@example.org${ch}`, `${ch}kim@example.org`]) {
        expect(normalizeEmail(raw), JSON.stringify(raw)).toBeUndefined();
      }
    }
  });

  it("puts the domain through UTS #46: A-labels, fullwidth and case mapped like a resolver does", () => {
    expect(normalizeEmail("kim@Bücher.DE")).toBe("kim@xn--bcher-kva.de");
    expect(normalizeEmail("kim@xn--bcher-kva.de")).toBe("kim@xn--bcher-kva.de");
    expect(normalizeEmail("kim@ｅxample.org")).toBe("kim@example.org");
    expect(normalizeEmail("kim@\u212Aelvin.org")).toBe("kim@kelvin.org");
  });

  it("refuses domains that are not RFC 5321 host names", () => {
    for (const raw of ["kim@localhost", "kim@1.2.3.4", "kim@0x7f.1", "kim@[127.0.0.1]", "kim@ex%41mple.org", "kim@exa_mple.org", "kim@-example.org",
      "kim@example..org", "kim@example.org.", "kim@xn--zz.org", "kim@*.org", "kim@exa/mple.org", `kim@${"a".repeat(64)}.org`]) {
      expect(normalizeEmail(raw), raw).toBeUndefined();
    }
  });

  it("refuses what is not an address", () => {
    for (const raw of ["", "kim", "@example.org", "kim@", "kim@@example.org", '"kim"@example.org', "k(im)@example.org", "kim doe@example.org", `${"k".repeat(65)}@example.org`]) {
      expect(normalizeEmail(raw), raw).toBeUndefined();
    }
    expect(normalizeEmail(`${"k".repeat(64)}@example.org`)).toBeDefined();
    expect(normalizeEmail(`${"é".repeat(33)}@example.org`)).toBeUndefined(); // 66 octets
  });
});

describe("normalizeUsername", () => {
  it("lower-cases ASCII and refuses anything that only lower-cases to ASCII", () => {
    expect(normalizeUsername(" Kim_Doe ")).toBe("kim_doe");
    expect(normalizeUsername("\u212Aim_doe")).toBeUndefined(); // toLowerCase() would make it kim_doe
    expect(normalizeUsername("k\u0131m_doe")).toBeUndefined();
    expect(normalizeUsername("\uFF4Bim_doe")).toBeUndefined();
    expect(normalizeUsername("kim_doe\u2028")).toBeUndefined();
  });
});

describe("normalizePhone", () => {
  it("gives the same E.164 number for fullwidth digits, and refuses invisible characters", () => {
    expect(normalizePhone("+1 (415) 555-0123")).toBe("+14155550123");
    expect(normalizePhone("+\uFF11\uFF14\uFF11\uFF15\uFF15\uFF15\uFF15\uFF10\uFF11\uFF12\uFF13")).toBe("+14155550123");
    for (const ch of ["\u200B", "\u200D", "\u202E", "\uFEFF", "\u2060", "\n", "\u001B"]) {
      expect(normalizePhone(`+1415${ch}5550123`), JSON.stringify(ch)).toBeUndefined();
      expect(normalizePhone(`${ch}+14155550123`), JSON.stringify(ch)).toBeUndefined();
    }
  });
});

describe("parseIdentifier and login limits", () => {
  it("finds the kind and the canonical value", () => {
    expect(parseIdentifier(" \u212Aim@Example.org ")).toEqual({ kind: "email", value: "kim@example.org" });
    expect(parseIdentifier("Kim@exa\u200Bmple.org")).toBeUndefined();
    expect(parseIdentifier("+1 415 555 0123")).toEqual({ kind: "phone", value: "+14155550123" });
    expect(parseIdentifier("\u212Aim_doe")).toBeUndefined();
  });

  it("keys failures of an unknown address by its canonical form, not a case-folded one", () => {
    expect(loginSubject(undefined, parseIdentifier("\u00C5sa@example.org"), "")).toBe("email:\u00C5sa@example.org");
    expect(loginSubject(undefined, parseIdentifier("KIM@example.org"), "")).toBe("email:kim@example.org");
  });
});

describe("hasControlCharacters (display names)", () => {
  it("refuses CR, LF, ESC (ANSI sequences), tabs, bidi controls and zero-width characters", () => {
    for (const name of ["Ada\r\nLovelace", "Ada\n", "\u001B[31mAda\u001B[0m", "Ada\tL", "Ada\u0000", "\u202Eada", "Ada\u2066x\u2069", "A\u200Bda", "Ada\u2028", "Ada\u2029", "\uFEFFAda", "Ada\u00AD", "\u200D", "Ada\u200D", "\u200CAda", "A\u200C\u200Dda"]) {
      expect(hasControlCharacters(name), JSON.stringify(name)).toBe(true);
    }
  });

  it("accepts names in any script, joiners inside words and emoji sequences", () => {
    for (const name of ["Ada Lovelace", "Jörg Müller", "İlkay Gündoğan", "ميم\u200Cنون", "می\u200Cخواهم", "क्\u200Dष", "👩\u200D💻 Ada", "👍🏽", "❤\uFE0F", "李小龍"]) {
      expect(hasControlCharacters(name), JSON.stringify(name)).toBe(false);
    }
  });
});
