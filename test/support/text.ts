// Text helpers of the input tests.

/** Well-formed UTF-16 (no lone surrogate), by a route independent of the service's own check. */
export function wellFormed(text: string): boolean {
  try {
    encodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}
