// The person's own account: the profile (UpdateProfile with a field mask of what changed), email
// and phone (ChangeEmail / ChangePhone, then ConfirmContactChange with the code sent to the new
// address; a REAUTHENTICATION_REQUIRED refusal opens an in-place Reauthenticate prompt and the
// change continues after it), change password, delete account, and, signed out, the password
// reset by code (RequestPasswordReset + ResetPassword).
import { OtpChannel, type User } from "../../gen/identity/v1/common_pb.js";
import { api, ensureFreshToken } from "./api.js";
import { reauthenticate, refusedFor } from "./reauth.js";
import { byId, show, input, field } from "./dom.js";

/** What this part needs from the rest of the app (main.ts). */
export interface AccountHost {
  act(button: HTMLButtonElement | null, action: () => Promise<void>): Promise<void>;
  showNotice(text: string): void;
  /** Reloads what the signed-in page shows (who am I, two-step status, activity). */
  reload(): Promise<void>;
  /** Forgets the session and shows the signed-out page. */
  signOut(): void;
  /** Starts showing the development outbox, where it exists. */
  pollOutbox(): void;
}

export interface AccountSection {
  /** Fills the profile form with the account as the service has it. */
  showUser(user: User | undefined): void;
  /** After sign-out: hide the pending steps and empty the forms. */
  leave(): void;
}

const channelOf = (f: HTMLFormElement): OtpChannel => (field(f, "channel") === "sms" ? OtpChannel.SMS : OtpChannel.EMAIL);

/** Profile form input -> the proto field (its mask path) and the account's current value. */
const PROFILE_FIELDS = [
  { name: "displayName", path: "display_name", current: (u: User) => u.displayName },
  { name: "username", path: "username", current: (u: User) => u.username },
  { name: "givenName", path: "given_name", current: (u: User) => u.givenName },
  { name: "familyName", path: "family_name", current: (u: User) => u.familyName },
  { name: "country", path: "country", current: (u: User) => u.country },
  { name: "birthDate", path: "birth_date", current: (u: User) => u.birthDate },
] as const;

export function setupAccount(host: AccountHost): AccountSection {
  let user: User | undefined;
  let contactTarget: { channel: OtpChannel; destination: string } | undefined;
  /** The change a REAUTHENTICATION_REQUIRED refusal interrupted: it runs again after Reauthenticate. */
  let pending: (() => Promise<void>) | undefined;

  function onSubmit(id: string, action: (f: HTMLFormElement) => Promise<void>): void {
    const f = byId<HTMLFormElement>(id);
    f.addEventListener("submit", (event) => {
      event.preventDefault();
      void host.act(f.querySelector<HTMLButtonElement>("button[type=submit]"), () => action(f));
    });
  }

  function showUser(next: User | undefined): void {
    user = next;
    const f = byId<HTMLFormElement>("profile-form");
    for (const { name, current } of PROFILE_FIELDS) input(f, name).value = next ? current(next) : "";
  }

  // ---- profile ----

  onSubmit("profile-form", async (f) => {
    if (!user) throw new Error("not signed in");
    const profile: Record<string, string> = {};
    const paths: string[] = [];
    for (const { name, path, current } of PROFILE_FIELDS) {
      const value = field(f, name);
      if (value === current(user)) continue;
      profile[name] = value;
      paths.push(path);
    }
    if (paths.length === 0) {
      host.showNotice("Nothing to save: the profile is unchanged.");
      return;
    }
    await ensureFreshToken();
    const res = await api().auth.updateProfile({ profile, updateMask: { paths } });
    showUser(res.user);
    await host.reload();
    host.showNotice("Your profile was saved.");
  });

  // ---- email and phone ----

  /** Runs a change that needs a recent sign-in; on REAUTHENTICATION_REQUIRED keeps it for after the prompt. */
  async function recent(change: () => Promise<void>): Promise<void> {
    try {
      await ensureFreshToken();
      await change();
    } catch (err) {
      if (refusedFor(err, "REAUTHENTICATION_REQUIRED")) {
        pending = change;
        show(byId("reauth-form"), true);
        input(byId<HTMLFormElement>("reauth-form"), "password").focus();
      }
      throw err;
    }
  }

  function codeSent(channel: OtpChannel, destination: string): void {
    contactTarget = { channel, destination };
    byId("contact-sent-to").textContent = `A code was sent to ${destination}.`;
    show(byId("contact-confirm-form"), true);
    input(byId<HTMLFormElement>("contact-confirm-form"), "code").focus();
    host.showNotice(`Code sent to ${destination}. Enter it to confirm the new ${channel === OtpChannel.SMS ? "phone number" : "email address"}.`);
    host.pollOutbox();
  }

  onSubmit("email-change-form", async (f) => {
    const email = field(f, "email");
    await recent(async () => {
      await api().auth.changeEmail({ email });
      codeSent(OtpChannel.EMAIL, email);
    });
  });

  onSubmit("phone-change-form", async (f) => {
    const phone = field(f, "phone");
    await recent(async () => {
      await api().auth.changePhone({ phone });
      codeSent(OtpChannel.SMS, phone);
    });
  });

  onSubmit("contact-confirm-form", async (f) => {
    if (!contactTarget) throw new Error("no code was sent");
    await ensureFreshToken();
    const res = await api().auth.confirmContactChange({ ...contactTarget, code: field(f, "code") });
    const sms = contactTarget.channel === OtpChannel.SMS;
    contactTarget = undefined;
    f.reset();
    byId<HTMLFormElement>(sms ? "phone-change-form" : "email-change-form").reset();
    show(f, false);
    showUser(res.user);
    await host.reload();
    host.showNotice(sms ? `Your phone number is now ${res.user?.phone ?? ""}.` : `Your email address is now ${res.user?.email ?? ""}.`);
  });

  onSubmit("reauth-form", async (f) => {
    await reauthenticate(f);
    show(f, false);
    const next = pending;
    pending = undefined;
    if (next) await next();
    else host.showNotice("Thank you: you confirmed it is you.");
  });

  byId("reauth-cancel").addEventListener("click", () => {
    pending = undefined;
    byId<HTMLFormElement>("reauth-form").reset();
    show(byId("reauth-form"), false);
  });

  // ---- password and account ----

  onSubmit("password-change-form", async (f) => {
    await ensureFreshToken();
    const res = await api().auth.changePassword({ currentPassword: input(f, "currentPassword").value, newPassword: input(f, "newPassword").value });
    f.reset();
    await host.reload();
    const n = res.endedSessionCount;
    host.showNotice(`Your password was changed${n > 0 ? ` and ${n} other ${n === 1 ? "session was" : "sessions were"} ended` : ""}.`);
  });

  onSubmit("delete-account-form", async (f) => {
    if (!input(f, "confirm").checked) {
      host.showNotice("Tick the box to confirm that you want to delete this account.");
      return;
    }
    await ensureFreshToken();
    await api().auth.deleteAccount({ password: input(f, "password").value });
    f.reset();
    host.signOut();
    host.showNotice("Your account was deleted and you are signed out.");
  });

  // ---- signed out: password reset by code ----

  let resetTarget: { channel: OtpChannel; destination: string } | undefined;

  onSubmit("reset-request-form", async (f) => {
    const target = { channel: channelOf(f), destination: field(f, "destination") };
    await api().auth.requestPasswordReset(target);
    resetTarget = target;
    byId("reset-sent-to").textContent = `If an account uses ${target.destination}, a reset code was sent there.`;
    show(byId("reset-form"), true);
    input(byId<HTMLFormElement>("reset-form"), "code").focus();
    host.showNotice("Reset code sent, if the address belongs to an account. It is valid for a few minutes.");
    host.pollOutbox();
  });

  onSubmit("reset-form", async (f) => {
    if (!resetTarget) throw new Error("no code was sent");
    await api().auth.resetPassword({ ...resetTarget, code: field(f, "code"), newPassword: input(f, "newPassword").value });
    const destination = resetTarget.destination;
    resetTarget = undefined;
    f.reset();
    show(f, false);
    byId<HTMLFormElement>("reset-request-form").reset();
    const login = byId<HTMLFormElement>("login-form");
    input(login, "identifier").value = destination;
    host.showNotice("Your password was reset. Sign in with the new one.");
  });

  function leave(): void {
    pending = undefined;
    contactTarget = undefined;
    user = undefined;
    for (const id of ["profile-form", "email-change-form", "phone-change-form", "contact-confirm-form", "reauth-form", "password-change-form", "delete-account-form"]) byId<HTMLFormElement>(id).reset();
    show(byId("contact-confirm-form"), false);
    show(byId("reauth-form"), false);
  }

  return { showUser, leave };
}
