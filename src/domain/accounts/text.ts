// Characters that do not belong in text a person typed and another person reads: they are
// invisible, reorder what is displayed (bidi controls), or act on logs and terminals (CR, LF,
// ESC). Identifiers refuse them outright; display names refuse all but two harmless joiners.

/**
 * Never in an address: controls (Cc), format characters (Cf: zero-width space/joiners, bidi
 * embeddings/overrides/isolates, BOM, soft hyphen), every separator and space (Z), surrogates,
 * private use and unassigned code points, and whatever else Unicode says to render as nothing
 * (Default_Ignorable_Code_Point: Hangul fillers, variation selectors, ...).
 */
export const NOT_IN_IDENTIFIERS = /[\p{Cc}\p{Cf}\p{Z}\p{Cs}\p{Co}\p{Cn}\p{Default_Ignorable_Code_Point}]/u;

/** Never in a phone number as typed: as above but spaces, which only format the digits. */
export const NOT_IN_PHONE_NUMBERS = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}\p{Default_Ignorable_Code_Point}]/u;

/**
 * Zero-width non-joiner and joiner between two visible characters: Persian and Indic names need
 * them, and so do emoji sequences. Anywhere else they only hide something.
 */
const JOINER_IN_WORD = /(?<=[\p{L}\p{M}\p{N}\p{S}])[\u200C\u200D](?=[\p{L}\p{M}\p{N}\p{S}])/gu;
const CONTROL_OR_FORMAT = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/** Whether a display name has a control, format (bidi, zero-width) or line-separator character. */
export function hasControlCharacters(text: string): boolean {
  return CONTROL_OR_FORMAT.test(text.replace(JOINER_IN_WORD, ""));
}
