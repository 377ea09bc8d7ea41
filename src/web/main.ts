// The browser app: every public flow of the service, by hand, over gRPC-web or Connect.
// Plain DOM, no framework. Tokens: see api.ts.
import { AuditEventType, type AuditEvent, type Session } from "../../gen/identity/v1/auth_service_pb.js";
import { OtpChannel, OtpPurpose, type MfaChallenge, type TokenPair, type User } from "../../gen/identity/v1/common_pb.js";
import {
  accessTokenExpiry,
  api,
  currentAccessToken,
  ensureFreshToken,
  forgetTokens,
  holdTokens,
  refreshSession,
  transportName,
  useTransport,
  type TransportName,
} from "./api.js";
import { setupAccount } from "./account.js";
import { setupAdmin } from "./admin.js";
import { decodeToken, describeClaims } from "./claims.js";
import { endsSession, friendlyMessage } from "./errors.js";
import { setupSecurity } from "./security.js";
import { setupPasskeys } from "./passkeys.js";
import { bindLinkForm, setupFederation, takeProviderReturn } from "./federation.js";
import { byId, show, when, field as value } from "./dom.js";

const form = (id: string) => byId<HTMLFormElement>(id);

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className) el.className = className;
  return el;
}

// ---- messages ----

function clearMessages(): void {
  show(byId("error"), false);
  show(byId("notice"), false);
}

function showError(text: string): void {
  const el = byId("error");
  el.textContent = text;
  show(el, true);
}

function showNotice(text: string): void {
  const el = byId("notice");
  el.textContent = text;
  show(el, true);
}

/** Runs one user action: clears old messages, disables the button, shows failures as sentences. */
async function act(button: HTMLButtonElement | null, action: () => Promise<void>): Promise<void> {
  clearMessages();
  if (button) button.disabled = true;
  try {
    await action();
  } catch (err) {
    showError(friendlyMessage(err));
    if (signedIn && endsSession(err)) enterSignedOut();
  } finally {
    if (button) button.disabled = false;
  }
}

function onSubmit(id: string, action: (f: HTMLFormElement) => Promise<void>): void {
  const f = form(id);
  f.addEventListener("submit", (event) => {
    event.preventDefault();
    void act(f.querySelector<HTMLButtonElement>("button[type=submit]"), () => action(f));
  });
}

function onClick(id: string, action: () => Promise<void>): void {
  const button = byId<HTMLButtonElement>(id);
  button.addEventListener("click", () => void act(button, action));
}

// ---- session state ----

let signedIn = false;
let challenge: MfaChallenge | undefined;
let who = "";
/** What the person signs in with (email, else username, else phone): the step-up fills it in. */
let signInName = "";

function updateStatus(): void {
  const transport = transportName() === "connect" ? "Connect" : "gRPC-web";
  const state = signedIn ? `Signed in as ${who}` : challenge ? "Second step needed" : "Signed out";
  byId("status").textContent = `${state} · ${transport}`;
}

function enterSignedOut(): void {
  forgetTokens();
  signedIn = false;
  challenge = undefined;
  who = "";
  signInName = "";
  admin.leave();
  account.leave();
  security.leave();
  passkeys.leave();
  federation.leave();
  show(byId("signed-in"), false);
  show(byId("mfa-challenge"), false);
  show(byId("signed-out"), true);
  byId("whoami").replaceChildren();
  byId("claims").textContent = "";
  byId("session-rows").replaceChildren();
  byId("activity-list").replaceChildren();
  show(byId("totp-setup"), false);
  show(byId("backup-codes"), false);
  updateStatus();
}

async function enterSignedIn(tokens: TokenPair | undefined): Promise<void> {
  holdTokens(tokens);
  signedIn = true;
  challenge = undefined;
  for (const id of ["signup-form", "login-form", "otp-send-form", "otp-verify-form", "mfa-form", "reset-request-form", "reset-form"]) form(id).reset();
  show(byId("otp-verify-form"), false);
  show(byId("reset-form"), false);
  show(byId("signed-out"), false);
  show(byId("mfa-challenge"), false);
  show(byId("signed-in"), true);
  await Promise.all([loadWhoAmI(), security.load(), passkeys.load(), loadSessions(), loadActivity(), admin.enter(), federation.load()]);
}

function enterChallenge(next: MfaChallenge): void {
  challenge = next;
  security.showChallenge(next);
  updateStatus();
  show(byId("signed-out"), false);
  show(byId("mfa-challenge"), true);
  form("mfa-form").querySelector<HTMLInputElement>("input[name=code]")?.focus();
}

/** Signs in with tokens, or moves on to the second factor. */
async function signInResult(result: { case: "tokens"; value: TokenPair } | { case: "mfaChallenge"; value: MfaChallenge } | { case: undefined }, welcome: string): Promise<void> {
  if (result.case === "mfaChallenge") {
    enterChallenge(result.value);
    showNotice("Almost there: this account uses two-step verification.");
    return;
  }
  if (result.case !== "tokens") throw new Error("the service answered neither tokens nor a challenge");
  await enterSignedIn(result.value);
  showNotice(welcome);
}

// ---- signed in: what the page shows ----

function renderClaims(): void {
  const token = currentAccessToken();
  const decoded = token ? decodeToken(token) : undefined;
  byId("claims").textContent = decoded ? `header\n${describeClaims(decoded.header)}\n\nclaims\n${describeClaims(decoded.claims)}` : "";
  renderExpiry();
}

function renderExpiry(): void {
  const expiry = accessTokenExpiry();
  if (!signedIn || !expiry) return;
  const seconds = Math.round((expiry.getTime() - Date.now()) / 1000);
  byId("token-expiry").textContent =
    seconds > 0 ? `Expires at ${expiry.toLocaleTimeString()} (in ${seconds} s); a new one is fetched when needed.` : "Expired: a new one is fetched with the next action.";
}

function fact(list: HTMLElement, name: string, text: string): void {
  if (text === "") return;
  list.append(element("dt", name), element("dd", text));
}

async function loadWhoAmI(): Promise<void> {
  await ensureFreshToken();
  const res = await api().auth.whoAmI({});
  const user: User | undefined = res.user;
  const list = byId("whoami");
  list.replaceChildren();
  who = user?.displayName || user?.email || user?.username || user?.phone || "you";
  signInName = user?.email || user?.username || user?.phone || "";
  if (user) {
    fact(list, "Name", user.displayName);
    fact(list, "Email", user.email ? `${user.email}${user.emailVerified ? " (verified)" : " (not verified)"}` : "");
    fact(list, "Username", user.username);
    fact(list, "Phone", user.phone ? `${user.phone}${user.phoneVerified ? " (verified)" : " (not verified)"}` : "");
    fact(list, "Given name", user.givenName);
    fact(list, "Family name", user.familyName);
    fact(list, "Country", user.country);
    fact(list, "Birth date", user.birthDate);
    fact(list, "Role", user.role);
    fact(list, "Password", user.hasPassword ? "set" : "none (signs in with codes)");
    fact(list, "Two-step verification", user.mfaEnabled ? "on" : "off");
    fact(list, "Account created", when(user.createTime));
    fact(list, "User id", user.id);
  }
  account.showUser(user);
  fact(list, "Session", res.sessionId);
  fact(list, "Signed in with", res.amr.join(", "));
  renderClaims();
  updateStatus();
}

function describeDevice(userAgent: string): string {
  if (userAgent === "") return "unknown";
  const browser = /(Edg|Chrome|Firefox|Safari)\/[\d.]+/.exec(userAgent)?.[0];
  if (browser) return browser.replace("Edg", "Edge");
  return userAgent.length > 40 ? `${userAgent.slice(0, 40)}…` : userAgent;
}

async function loadSessions(): Promise<void> {
  await ensureFreshToken();
  const res = await api().auth.listSessions({ pageSize: 50 });
  byId("session-rows").replaceChildren(...res.sessions.map(sessionRow));
}

function sessionRow(session: Session): HTMLTableRowElement {
  const row = element("tr");
  row.dataset.sessionId = session.id;
  row.append(
    element("td", when(session.createTime)),
    element("td", describeDevice(session.userAgent), "device"),
    element("td", session.ipAddress),
    element("td", session.amr.join(", ")),
  );
  const cell = element("td");
  if (session.current) {
    cell.textContent = "this session";
  } else {
    const revoke = element("button", "Revoke", "danger");
    revoke.type = "button";
    revoke.addEventListener("click", () =>
      void act(revoke, async () => {
        await ensureFreshToken();
        await api().auth.revokeSession({ sessionId: session.id });
        await Promise.all([loadSessions(), loadActivity()]);
        showNotice("The session was ended.");
      }),
    );
    cell.append(revoke);
  }
  row.append(cell);
  return row;
}

const EVENT_TEXT: Partial<Record<AuditEventType, string>> = {
  [AuditEventType.SIGN_UP]: "Account created",
  [AuditEventType.LOGIN_SUCCEEDED]: "Signed in",
  [AuditEventType.LOGIN_FAILED]: "Failed sign-in",
  [AuditEventType.LOGOUT]: "Signed out",
  [AuditEventType.PASSWORD_CHANGED]: "Password changed",
  [AuditEventType.PASSWORD_RESET]: "Password reset",
  [AuditEventType.REFRESH_TOKEN_REUSED]: "A spent refresh token was used again; the session was ended",
  [AuditEventType.SESSION_REVOKED]: "Session ended",
  [AuditEventType.ACCOUNT_DELETED]: "Account deleted",
  [AuditEventType.CONTACT_VERIFIED]: "Contact verified",
  [AuditEventType.MFA_ENABLED]: "Two-step verification turned on",
  [AuditEventType.MFA_DISABLED]: "Two-step verification turned off",
  [AuditEventType.MFA_FAILED]: "Wrong second-step code",
  [AuditEventType.BACKUP_CODE_USED]: "Backup code used",
  [AuditEventType.BACKUP_CODES_REGENERATED]: "New backup codes made",
  [AuditEventType.ROLE_CHANGED]: "Role changed",
  [AuditEventType.ACCOUNT_DISABLED]: "Account disabled",
  [AuditEventType.ACCOUNT_ENABLED]: "Account enabled",
  [AuditEventType.ACCOUNT_RESTORED]: "Account restored",
  [AuditEventType.SESSIONS_REVOKED_BY_ADMIN]: "All sessions ended",
  [AuditEventType.MFA_RESET]: "Two-step verification reset",
  [AuditEventType.PROFILE_UPDATED]: "Profile updated",
  [AuditEventType.CONTACT_CHANGE_REQUESTED]: "Code sent to confirm a new email address or phone number",
  [AuditEventType.CONTACT_CHANGED]: "Email address or phone number changed",
  [AuditEventType.REAUTHENTICATED]: "Identity confirmed again",
  [AuditEventType.PASSKEY_REGISTERED]: "Passkey added",
  [AuditEventType.PASSKEY_RENAMED]: "Passkey renamed",
  [AuditEventType.PASSKEY_REMOVED]: "Passkey removed",
  [AuditEventType.PASSKEY_LOGIN]: "Signed in with a passkey",
  [AuditEventType.PASSKEY_LOGIN_FAILED]: "Failed sign-in with a passkey",
  [AuditEventType.IDENTITY_LINKED]: "Sign-in provider linked",
  [AuditEventType.IDENTITY_UNLINKED]: "Sign-in provider unlinked",
  [AuditEventType.FEDERATED_LOGIN]: "Signed in with a provider",
  [AuditEventType.FEDERATED_LOGIN_FAILED]: "Sign-in with a provider refused",
};

function activityItem(event: AuditEvent): HTMLLIElement {
  const item = element("li");
  item.dataset.type = AuditEventType[event.type] ?? "UNSPECIFIED";
  // `actor` (who administered) is said once, below, rather than among the details; a
  // `x_before`/`x_after` pair reads as one change, `x: before → after`.
  const facts = event.details;
  const details = Object.entries(facts)
    .filter(([k]) => k !== "actor" && !(k.endsWith("_after") && `${k.slice(0, -6)}_before` in facts))
    .map(([k, v]) => {
      const pair = k.endsWith("_before") && `${k.slice(0, -7)}_after` in facts;
      return pair ? `${k.slice(0, -7).replace(/_/g, " ")}: ${v} → ${facts[`${k.slice(0, -7)}_after`]}` : `${k.replace(/_/g, " ")}: ${v}`;
    })
    .join(", ");
  const byAdministrator = event.byAdministrator ? " — changed by an administrator" : "";
  item.textContent = `${when(event.createTime)}: ${EVENT_TEXT[event.type] ?? "Other event"}${byAdministrator}${event.ipAddress ? ` from ${event.ipAddress}` : ""}${details ? ` (${details})` : ""}`;
  return item;
}

async function loadActivity(): Promise<void> {
  await ensureFreshToken();
  const res = await api().auth.listActivity({ pageSize: 50 });
  byId("activity-list").replaceChildren(...res.events.map(activityItem));
}

// ---- administration (admin.ts) ----

const admin = setupAdmin({
  act,
  showNotice,
  activityItem,
  async signInAgain() {
    const identifier = signInName;
    try {
      await api().auth.logout({});
    } finally {
      enterSignedOut();
    }
    const login = form("login-form");
    (login.elements.namedItem("identifier") as HTMLInputElement).value = identifier;
    login.querySelector<HTMLInputElement>("input[name=password]")?.focus();
    showNotice("Sign in again with your password and your second factor to continue with administration.");
  },
});

// ---- the account and its second factors (account.ts, security.ts) ----

/** After a change: who am I (the profile form too) and the activity, as the service now has them. */
const reload = () => Promise.all([loadWhoAmI(), loadActivity()]).then(() => undefined);

const account = setupAccount({ act, showNotice, reload, signOut: enterSignedOut, pollOutbox: () => void pollOutbox() });

function showBackupCodes(codes: readonly string[]): void {
  byId("backup-code-list").replaceChildren(...codes.map((c) => element("li", c)));
  show(byId("backup-codes"), true);
}

const security = setupSecurity({ act, showNotice, reload, showBackupCodes, challenge: () => challenge, pollOutbox: () => void pollOutbox() });

const passkeys = setupPasskeys({ act, showNotice, showError, reload, signedIn: enterSignedIn });
// Sign-in with OpenID Connect providers, and linked providers (federation.ts).
const federation = setupFederation({ act, showNotice, reload, signInResult });
bindLinkForm({ act, showNotice, reload, signInResult });

// ---- flows ----

onSubmit("signup-form", async (f) => {
  const res = await api().auth.signUp({
    email: value(f, "email"),
    username: value(f, "username"),
    phone: value(f, "phone"),
    displayName: value(f, "displayName"),
    givenName: value(f, "givenName"),
    familyName: value(f, "familyName"),
    country: value(f, "country"),
    birthDate: value(f, "birthDate"),
    password: (f.elements.namedItem("password") as HTMLInputElement).value,
  });
  await enterSignedIn(res.tokens);
  showNotice("Your account was created and you are signed in.");
});

onSubmit("login-form", async (f) => {
  const res = await api().auth.login({ identifier: value(f, "identifier"), password: (f.elements.namedItem("password") as HTMLInputElement).value });
  await signInResult(res.result, "You are signed in.");
});

let otpTarget: { channel: OtpChannel; destination: string } | undefined;

onSubmit("otp-send-form", async (f) => {
  const channel = value(f, "channel") === "sms" ? OtpChannel.SMS : OtpChannel.EMAIL;
  const destination = value(f, "destination");
  await api().otp.sendOtp({ channel, destination, purpose: OtpPurpose.LOGIN });
  otpTarget = { channel, destination };
  byId("otp-sent-to").textContent = `A code was sent to ${destination}.`;
  show(form("otp-verify-form"), true);
  form("otp-verify-form").querySelector<HTMLInputElement>("input[name=code]")?.focus();
  showNotice("Code sent. It is valid for a few minutes.");
  void pollOutbox();
});

onSubmit("otp-verify-form", async (f) => {
  if (!otpTarget) throw new Error("no code was sent");
  const res = await api().otp.verifyOtp({ ...otpTarget, purpose: OtpPurpose.LOGIN, code: value(f, "code") });
  await signInResult(res.result, res.newUser ? "Welcome! Your account was created and you are signed in." : "You are signed in.");
});

onSubmit("mfa-form", async (f) => {
  if (!challenge) throw new Error("no challenge");
  const res = await api().mfa.verifyMfa({
    challengeToken: challenge.challengeToken,
    code: security.code(f),
  });
  await enterSignedIn(res.tokens);
  showNotice("You are signed in.");
});

byId("mfa-cancel").addEventListener("click", () => {
  clearMessages();
  enterSignedOut();
});

onClick("refresh-button", async () => {
  await refreshSession();
  renderClaims();
  showNotice("Tokens refreshed: a new access token, and a new refresh token in the cookie.");
});

onClick("logout-button", async () => {
  await api().auth.logout({});
  enterSignedOut();
  showNotice("You are signed out.");
});

onClick("logout-all-button", async () => {
  const res = await api().auth.logout({ allSessions: true });
  enterSignedOut();
  showNotice(`You are signed out everywhere (${res.endedSessionCount} ${res.endedSessionCount === 1 ? "session" : "sessions"} ended).`);
});

onClick("totp-setup-button", async () => {
  await ensureFreshToken();
  const setup = await api().mfa.setupTotp({});
  byId<HTMLImageElement>("totp-qr").src = setup.qrCodeDataUrl;
  byId("totp-secret").textContent = setup.secret;
  byId("totp-url").textContent = setup.otpauthUrl;
  show(byId("totp-setup-button"), false);
  show(byId("totp-setup"), true);
});

onSubmit("totp-confirm-form", async (f) => {
  await ensureFreshToken();
  const res = await api().mfa.confirmTotp({ code: value(f, "code") });
  f.reset();
  show(byId("totp-setup"), false);
  showBackupCodes(res.backupCodes);
  showNotice("Two-step verification is on.");
  await Promise.all([security.load(), loadWhoAmI(), loadActivity()]);
});

byId("backup-codes-done").addEventListener("click", () => {
  byId("backup-code-list").replaceChildren();
  show(byId("backup-codes"), false);
});

onClick("sessions-reload", loadSessions);
onClick("activity-reload", loadActivity);

// ---- transport switch ----

function chooseTransport(name: TransportName): void {
  useTransport(name);
  const url = new URL(window.location.href);
  url.searchParams.set("transport", name);
  window.history.replaceState(null, "", url);
  updateStatus();
}

for (const radio of Array.from(document.querySelectorAll<HTMLInputElement>("input[name=transport]"))) {
  radio.addEventListener("change", () => {
    if (!radio.checked) return;
    chooseTransport(radio.value as TransportName);
    clearMessages();
    showNotice(`Calls now use the ${radio.value === "connect" ? "Connect" : "gRPC-web"} protocol.`);
  });
}

// ---- development outbox ----

interface OutboxMessage {
  readonly id: number;
  readonly time: string;
  readonly channel: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

let outboxTop = -1;
let outboxPolling = false;

/** Shows the development provider's messages; the endpoint does not exist in production. */
async function pollOutbox(): Promise<void> {
  let messages: OutboxMessage[];
  try {
    const res = await fetch("/dev/outbox", { cache: "no-store" });
    if (!res.ok) return;
    messages = ((await res.json()) as { messages: OutboxMessage[] }).messages;
  } catch {
    return;
  }
  show(byId("outbox"), true);
  if (!outboxPolling) {
    outboxPolling = true;
    window.setInterval(() => void pollOutbox(), 2_000);
  }
  if ((messages[0]?.id ?? 0) === outboxTop) return;
  outboxTop = messages[0]?.id ?? 0;
  byId("outbox-list").replaceChildren(
    ...messages.map((m) => {
      const item = element("li");
      item.dataset.to = m.to;
      item.append(
        element("div", `${m.channel === "sms" ? "SMS" : "Email"} to ${m.to} · ${new Date(m.time).toLocaleTimeString()}`, "meta"),
        element("div", m.channel === "email" ? m.subject : ""),
        element("div", m.text, "text"),
      );
      return item;
    }),
  );
  if (messages.length === 0) byId("outbox-list").append(element("li", "Nothing sent yet.", "hint"));
}

// ---- start ----

async function start(): Promise<void> {
  // A provider sending the browser back (federation.ts): the transport it left with.
  const providerReturn = takeProviderReturn();
  const requested = providerReturn?.transport ?? new URL(window.location.href).searchParams.get("transport");
  const name: TransportName = requested === "connect" ? "connect" : "grpc-web";
  for (const radio of Array.from(document.querySelectorAll<HTMLInputElement>("input[name=transport]"))) radio.checked = radio.value === name;
  chooseTransport(name);
  enterSignedOut();
  void pollOutbox();
  window.setInterval(renderExpiry, 1_000);
  // A reload keeps the session: the cookie (sent automatically, unreadable here) buys a new access token.
  try {
    await enterSignedIn(await refreshSession());
  } catch {
    enterSignedOut();
  }
  await federation.showProviders();
  if (signedIn) await federation.load();
  if (providerReturn) await federation.finish(providerReturn);
  document.body.dataset.ready = "true";
}

void start();
