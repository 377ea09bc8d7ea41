// The DOM helpers every part of the browser app uses.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};
export const show = (el: HTMLElement, visible: boolean) => (el.hidden = !visible);
export const when = (t: Timestamp | undefined): string => (t ? timestampDate(t).toLocaleString() : "");
export const input = (f: HTMLFormElement, name: string) => f.elements.namedItem(name) as HTMLInputElement;
/** A form field's trimmed value; "" when the form has no such field. */
export const field = (f: HTMLFormElement, name: string): string => (input(f, name)?.value ?? "").trim();
