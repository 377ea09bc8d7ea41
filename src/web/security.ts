// Second factors of the signed-in account: the two-step status, TOTP disable and backup-code
// regeneration, email/SMS codes as a second factor (EnableCodeFactor / DisableCodeFactor); and
// the sign-in's MFA step: the challenge's methods to choose from, with a "send code" button
// (SendMfaCode) for a code sent by email or SMS.
import { MfaMethod, OtpChannel, type MfaChallenge } from "../../gen/identity/v1/common_pb.js";
import type { VerifyMfaRequest } from "../../gen/identity/v1/mfa_service_pb.js";
import { api, ensureFreshToken } from "./api.js";
import { byId, show, when, input, field } from "./dom.js";

export interface SecurityHost {
  act(button: HTMLButtonElement | null, action: () => Promise<void>): Promise<void>;
  showNotice(text: string): void;
  /** Reloads who am I and the activity after a change. */
  reload(): Promise<void>;
  /** Shows freshly issued backup codes, once. */
  showBackupCodes(codes: readonly string[]): void;
  /** The sign-in's pending MFA challenge, if any. */
  challenge(): MfaChallenge | undefined;
  pollOutbox(): void;
}

export interface SecuritySection {
  /** Loads and shows the two-step status (and which controls apply). */
  load(): Promise<void>;
  /** Shows the methods a challenge lists as choices of the MFA step. */
  showChallenge(challenge: MfaChallenge): void;
  /** The VerifyMfa code of the MFA step's form. */
  code(f: HTMLFormElement): VerifyMfaRequest["code"];
  leave(): void;
}


/** The MFA step's choices: radio value, method, label, hint. */
const METHODS = [
  { value: "totp", method: MfaMethod.TOTP, label: "Authenticator code", hint: "Enter the 6-digit code from your authenticator app." },
  { value: "backup", method: MfaMethod.BACKUP_CODE, label: "Backup code", hint: "Enter one of your unused backup codes." },
  { value: "email", method: MfaMethod.EMAIL_CODE, label: "Code by email", hint: "Press “Send code”, then enter the code sent to your email address." },
  { value: "sms", method: MfaMethod.SMS_CODE, label: "Code by text message", hint: "Press “Send code”, then enter the code sent to your phone." },
] as const;

export function setupSecurity(host: SecurityHost): SecuritySection {
  function onSubmit(id: string, action: (f: HTMLFormElement, submitter: HTMLButtonElement | null) => Promise<void>): void {
    const f = byId<HTMLFormElement>(id);
    f.addEventListener("submit", (event) => {
      event.preventDefault();
      const submitter = (event.submitter as HTMLButtonElement | null) ?? f.querySelector<HTMLButtonElement>("button[type=submit]");
      void host.act(submitter, () => action(f, submitter));
    });
  }

  async function load(): Promise<void> {
    await ensureFreshToken();
    const status = await api().mfa.getMfaStatus({});
    byId("mfa-status").textContent = status.totpEnabled
      ? `On since ${when(status.enableTime)}. Backup codes left: ${status.backupCodesRemaining}.`
      : "Off. Add an authenticator app so a password alone cannot sign in.";
    show(byId("totp-setup-button"), !status.totpEnabled && byId("totp-setup").hidden);
    show(byId("totp-manage"), status.totpEnabled);
    const factors = [status.emailCodeEnabled ? "email" : "", status.smsCodeEnabled ? "text message" : ""].filter(Boolean);
    const text = factors.length > 0 ? `Codes by ${factors.join(" and ")} can confirm a password sign-in.` : "No code by email or text message is a second factor.";
    const el = byId("code-factor-status");
    el.textContent = text;
    el.dataset.email = String(status.emailCodeEnabled);
    el.dataset.sms = String(status.smsCodeEnabled);
  }

  onSubmit("backup-regenerate-form", async (f) => {
    await ensureFreshToken();
    const res = await api().mfa.regenerateBackupCodes({ totpCode: field(f, "totpCode") });
    f.reset();
    host.showBackupCodes(res.backupCodes);
    await Promise.all([load(), host.reload()]);
    host.showNotice("New backup codes were made; the old ones no longer work.");
  });

  onSubmit("totp-disable-form", async (f) => {
    await ensureFreshToken();
    await api().mfa.disableTotp({ password: input(f, "password").value, code: field(f, "code") });
    f.reset();
    await Promise.all([load(), host.reload()]);
    host.showNotice("The authenticator app no longer confirms your sign-ins.");
  });

  onSubmit("code-factor-form", async (f, submitter) => {
    const channel = field(f, "channel") === "sms" ? OtpChannel.SMS : OtpChannel.EMAIL;
    const password = input(f, "password").value;
    const enable = submitter?.value !== "disable";
    await ensureFreshToken();
    if (enable) await api().mfa.enableCodeFactor({ channel, password });
    else await api().mfa.disableCodeFactor({ channel, password });
    f.reset();
    await Promise.all([load(), host.reload()]);
    const what = channel === OtpChannel.SMS ? "Codes by text message" : "Codes by email";
    host.showNotice(enable ? `${what} now confirm your password sign-ins.` : `${what} no longer confirm your sign-ins.`);
  });

  // ---- the MFA step of a sign-in ----

  const form = () => byId<HTMLFormElement>("mfa-form");
  const chosen = () => METHODS.find((m) => m.value === (form().querySelector<HTMLInputElement>("input[name=method]:checked")?.value ?? ""));

  function methodChanged(): void {
    const choice = chosen();
    byId("mfa-code-hint").textContent = choice?.hint ?? "";
    show(byId("mfa-send-code"), choice?.value === "email" || choice?.value === "sms");
  }

  function showChallenge(challenge: MfaChallenge): void {
    // A challenge without methods comes from an older service: TOTP and backup codes.
    const offered = challenge.methods.length > 0 ? METHODS.filter((m) => challenge.methods.includes(m.method)) : METHODS.slice(0, 2);
    const set = byId("mfa-methods");
    set.replaceChildren(set.querySelector("legend") ?? document.createElement("legend"));
    offered.forEach((m, i) => {
      const label = document.createElement("label");
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "method";
      radio.value = m.value;
      radio.checked = i === 0;
      radio.addEventListener("change", methodChanged);
      label.append(radio, ` ${m.label}`);
      set.append(label);
    });
    methodChanged();
  }

  const sendButton = byId<HTMLButtonElement>("mfa-send-code");
  sendButton.addEventListener("click", () =>
    void host.act(sendButton, async () => {
      const challenge = host.challenge();
      const choice = chosen();
      if (!challenge || !choice) throw new Error("no challenge");
      await api().mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: choice.method });
      host.showNotice(`Code sent ${choice.value === "sms" ? "by text message" : "by email"}. It is valid for a few minutes.`);
      input(form(), "code").focus();
      host.pollOutbox();
    }),
  );

  function code(f: HTMLFormElement): VerifyMfaRequest["code"] {
    const value = field(f, "code");
    switch (chosen()?.value) {
      case "backup":
        return { case: "backupCode", value };
      case "email":
        return { case: "emailCode", value };
      case "sms":
        return { case: "smsCode", value };
      default:
        return { case: "totpCode", value };
    }
  }

  function leave(): void {
    for (const id of ["backup-regenerate-form", "totp-disable-form", "code-factor-form"]) byId<HTMLFormElement>(id).reset();
    show(byId("totp-manage"), false);
    show(byId("mfa-send-code"), false);
  }

  return { load, showChallenge, code, leave };
}
