// The app's Administration section: AdminService over the transport the app uses. Shown only
// when the service admits this person (their role is in ADMIN_ROLES): the section probes with
// the first page of ListUsers when the person signs in and stays hidden on any refusal. The
// server is the authority on every call; hiding the section is only a convenience.
//
// A person's administrative calls need a second factor proven within ADMIN_MAX_AUTH_AGE
// (reason STEP_UP_REQUIRED otherwise): the section then shows a prompt to verify it again in
// place (AuthService.Reauthenticate with the password and a TOTP or backup code), after which the
// interrupted action runs again; signing out and in again stays as the fallback.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { UserStatus, type AdminUser, type ListUsersRequestSchema } from "../../gen/identity/v1/admin_service_pb.js";
import type { AuditEvent } from "../../gen/identity/v1/auth_service_pb.js";
import type { ErrorReason } from "../error-reasons.js";
import { api, ensureFreshToken } from "./api.js";
import { reauthenticate } from "./reauth.js";
import { byId, show, when, input } from "./dom.js";

/** What the section needs from the rest of the app (main.ts). */
export interface AdminHost {
  /** Runs one user action: clears old messages, disables the button, shows failures as sentences. */
  act(button: HTMLButtonElement | null, action: () => Promise<void>): Promise<void>;
  showNotice(text: string): void;
  /** One activity entry, rendered as the person's own Activity list renders it. */
  activityItem(event: AuditEvent): HTMLLIElement;
  /** The step-up's fallback: end this session and show the sign-in forms, this person's identifier filled in. */
  signInAgain(): Promise<void>;
}

const PAGE_SIZE = 20;

const field = (f: HTMLFormElement, name: string): string => input(f, name).value.trim();

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className) el.className = className;
  return el;
}

const STATUS_TEXT: Readonly<Record<UserStatus, string>> = {
  [UserStatus.UNSPECIFIED]: "unknown",
  [UserStatus.ACTIVE]: "active",
  [UserStatus.DISABLED]: "disabled",
  [UserStatus.DELETED]: "deleted",
};

const STATUS_FILTER: Readonly<Record<string, UserStatus>> = {
  "": UserStatus.UNSPECIFIED,
  active: UserStatus.ACTIVE,
  disabled: UserStatus.DISABLED,
  deleted: UserStatus.DELETED,
};

const STEP_UP: ErrorReason = "STEP_UP_REQUIRED";

/** Whether the service refused the call for want of a recent second factor. */
export function needsStepUp(err: unknown): boolean {
  return ConnectError.from(err).findDetails(ErrorInfoSchema)[0]?.reason === STEP_UP;
}

function accountName(user: AdminUser["user"]): string {
  return user?.email || user?.username || user?.phone || user?.id || "";
}

type Filter = MessageInitShape<typeof ListUsersRequestSchema>;

export interface AdminSection {
  /** After sign-in: probe, and show the section if the service admits this person. */
  enter(): Promise<void>;
  /** After sign-out: hide and forget everything shown. */
  leave(): void;
}

export function setupAdmin(host: AdminHost): AdminSection {
  let filter: Filter = {};
  let nextPageToken = "";
  let selected: AdminUser | undefined;
  /** Incremented by leave(): a probe that answers after sign-out does not show the section. */
  let generation = 0;
  /** The action a STEP_UP_REQUIRED refusal interrupted: it runs again after the in-place step-up. */
  let pending: (() => Promise<void>) | undefined;

  /** Runs a section action; on STEP_UP_REQUIRED keeps it for after the step-up. */
  async function guarded(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (err) {
      if (needsStepUp(err)) pending = action;
      throw err;
    }
  }

  /** An AdminService call; a STEP_UP_REQUIRED refusal also shows the step-up prompt. */
  async function call<T>(rpc: () => Promise<T>): Promise<T> {
    await ensureFreshToken();
    try {
      const result = await rpc();
      show(byId("admin-step-up"), false);
      return result;
    } catch (err) {
      if (needsStepUp(err)) show(byId("admin-step-up"), true);
      throw err;
    }
  }

  function onSubmit(id: string, action: (f: HTMLFormElement) => Promise<void>): void {
    const f = byId<HTMLFormElement>(id);
    f.addEventListener("submit", (event) => {
      event.preventDefault();
      void host.act(f.querySelector<HTMLButtonElement>("button[type=submit]"), () => guarded(() => action(f)));
    });
  }

  function onClick(id: string, action: () => Promise<void>): void {
    const button = byId<HTMLButtonElement>(id);
    button.addEventListener("click", () => void host.act(button, () => guarded(action)));
  }

  // ---- the list ----

  function userRow(account: AdminUser): HTMLTableRowElement {
    const user = account.user;
    const row = element("tr");
    row.dataset.userId = user?.id ?? "";
    if (selected && selected.user?.id === user?.id) row.classList.add("selected");
    const open = element("button", "Open", "secondary");
    open.type = "button";
    open.addEventListener("click", () => void host.act(open, () => guarded(() => openUser(user?.id ?? ""))));
    const cell = element("td");
    cell.append(open);
    row.append(
      element("td", accountName(user)),
      element("td", user?.role ?? ""),
      element("td", STATUS_TEXT[account.status] ?? "unknown", "status"),
      element("td", when(user?.createTime)),
      element("td", String(account.activeSessions)),
      cell,
    );
    return row;
  }

  async function search(next: Filter, pageToken = ""): Promise<void> {
    const res = await call(() => api().admin.listUsers({ ...next, pageSize: PAGE_SIZE, pageToken }));
    filter = next;
    nextPageToken = res.nextPageToken;
    const rows = byId("admin-user-rows");
    if (pageToken === "") rows.replaceChildren();
    rows.append(...res.users.map(userRow));
    const count = rows.childElementCount;
    byId("admin-results").textContent = count === 0 ? "No account matches." : `${count} ${count === 1 ? "account" : "accounts"}${nextPageToken ? " so far" : ""}.`;
    show(byId("admin-next-page"), nextPageToken !== "");
  }

  onSubmit("admin-search-form", async (f) => {
    await search({
      emailPrefix: field(f, "email"),
      usernamePrefix: field(f, "username"),
      phonePrefix: field(f, "phone"),
      role: field(f, "role"),
      status: STATUS_FILTER[(f.elements.namedItem("status") as HTMLSelectElement).value] ?? UserStatus.UNSPECIFIED,
    });
  });

  onClick("admin-next-page", () => search(filter, nextPageToken));

  // ---- one account ----

  function fact(list: HTMLElement, name: string, text: string): void {
    if (text === "") return;
    list.append(element("dt", name), element("dd", text));
  }

  function renderUser(account: AdminUser): void {
    selected = account;
    const user = account.user;
    byId("admin-user-title").textContent = accountName(user);
    const list = byId("admin-user-facts");
    list.replaceChildren();
    fact(list, "Name", user?.displayName ?? "");
    fact(list, "Email", user?.email ? `${user.email}${user.emailVerified ? " (verified)" : " (not verified)"}` : "");
    fact(list, "Username", user?.username ?? "");
    fact(list, "Phone", user?.phone ? `${user.phone}${user.phoneVerified ? " (verified)" : " (not verified)"}` : "");
    fact(list, "Role", user?.role ?? "");
    fact(list, "Status", STATUS_TEXT[account.status] ?? "unknown");
    fact(list, "Disabled since", when(account.disableTime));
    fact(list, "Deleted", when(account.deleteTime));
    fact(list, "Restorable until", when(account.restoreDeadline));
    fact(list, "Two-step verification", user?.mfaEnabled ? "on" : "off");
    fact(list, "Active sessions", String(account.activeSessions));
    fact(list, "Last sign-in", when(account.lastLoginTime) || "never");
    fact(list, "Account created", when(user?.createTime));
    fact(list, "User id", user?.id ?? "");
    const roleForm = byId<HTMLFormElement>("admin-role-form");
    input(roleForm, "role").value = user?.role ?? "";
    input(roleForm, "revokeSessions").checked = false;
    byId<HTMLFormElement>("admin-disable-form").reset();
    const deleted = account.status === UserStatus.DELETED;
    show(roleForm, !deleted);
    show(byId("admin-disable-form"), account.status === UserStatus.ACTIVE);
    show(byId("admin-enable"), account.status === UserStatus.DISABLED);
    show(byId("admin-revoke-sessions"), !deleted);
    for (const row of Array.from(byId("admin-user-rows").querySelectorAll<HTMLElement>("tr"))) {
      row.classList.toggle("selected", row.dataset.userId === user?.id);
    }
    show(byId("admin-user"), true);
  }

  async function loadActivity(userId: string): Promise<void> {
    const res = await call(() => api().admin.listUserActivity({ userId, pageSize: 50 }));
    byId("admin-activity").replaceChildren(
      ...res.events.map((event) => {
        // As the account sees it, and who acted (`user:<id>`, `service:<name>` or `cli`).
        const item = host.activityItem(event);
        if (event.actor) item.append(element("span", ` · by ${event.actor}`, "actor"));
        return item;
      }),
    );
  }

  async function openUser(userId: string): Promise<void> {
    const res = await call(() => api().admin.getUser({ userId }));
    if (res.user) renderUser(res.user);
    await loadActivity(userId);
  }

  /** After a change: the account, its activity and the list as the service now has them. */
  async function changed(account: AdminUser | undefined, notice: string): Promise<void> {
    if (account) renderUser(account);
    const userId = selected?.user?.id ?? "";
    await Promise.all([loadActivity(userId), search(filter)]);
    host.showNotice(notice);
  }

  const selectedId = (): string => {
    if (!selected?.user) throw new Error("no account is open");
    return selected.user.id;
  };

  onSubmit("admin-role-form", async (f) => {
    const revokeSessions = input(f, "revokeSessions").checked;
    const res = await call(() => api().admin.setUserRole({ userId: selectedId(), role: field(f, "role"), revokeSessions }));
    await changed(res.user, `The role is now ${res.user?.user?.role ?? field(f, "role")}${revokeSessions ? ", and its sessions were ended" : ""}.`);
  });

  onSubmit("admin-disable-form", async (f) => {
    const res = await call(() => api().admin.disableUser({ userId: selectedId(), reason: field(f, "reason") }));
    await changed(res.user, "The account is disabled: it cannot sign in, and its sessions were ended.");
  });

  onClick("admin-enable", async () => {
    const res = await call(() => api().admin.enableUser({ userId: selectedId() }));
    await changed(res.user, "The account is enabled: it may sign in again.");
  });

  onClick("admin-revoke-sessions", async () => {
    const userId = selectedId();
    const res = await call(() => api().admin.revokeUserSessions({ userId }));
    const account = (await call(() => api().admin.getUser({ userId }))).user;
    await changed(account, `${res.revokedSessions} ${res.revokedSessions === 1 ? "session was" : "sessions were"} ended.`);
  });

  onClick("admin-activity-reload", () => loadActivity(selectedId()));

  byId("admin-user-close").addEventListener("click", () => {
    selected = undefined;
    show(byId("admin-user"), false);
    for (const row of Array.from(byId("admin-user-rows").querySelectorAll("tr"))) row.classList.remove("selected");
  });

  // The step-up in place: password and second factor again, then the interrupted action.
  const reauthForm = byId<HTMLFormElement>("admin-reauth-form");
  reauthForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void host.act(reauthForm.querySelector<HTMLButtonElement>("button[type=submit]"), async () => {
      await reauthenticate(reauthForm);
      show(byId("admin-step-up"), false);
      const next = pending ?? (() => search(filter));
      pending = undefined;
      await guarded(next);
      host.showNotice("Verified: you may continue with administration.");
    });
  });

  byId("admin-step-up-button").addEventListener("click", () => void host.act(byId<HTMLButtonElement>("admin-step-up-button"), () => host.signInAgain()));

  function leave(): void {
    generation += 1;
    pending = undefined;
    reauthForm.reset();
    filter = {};
    nextPageToken = "";
    selected = undefined;
    show(byId("admin"), false);
    show(byId("admin-step-up"), false);
    show(byId("admin-user"), false);
    show(byId("admin-next-page"), false);
    byId("admin-user-rows").replaceChildren();
    byId("admin-user-facts").replaceChildren();
    byId("admin-activity").replaceChildren();
    byId("admin-results").textContent = "";
    byId<HTMLFormElement>("admin-search-form").reset();
  }

  async function enter(): Promise<void> {
    leave();
    const mine = generation;
    try {
      await search({});
    } catch (err) {
      if (mine !== generation) return;
      // Admitted but for the second factor: the section shows with the step-up prompt.
      if (needsStepUp(err)) {
        pending = () => search({});
        show(byId("admin"), true);
      }
      return;
    }
    if (mine === generation) show(byId("admin"), true);
  }

  return { enter, leave };
}
