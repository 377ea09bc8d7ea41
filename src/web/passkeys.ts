// Passkeys in the browser app: "Sign in with a passkey" on the sign-in page, and the Passkeys list
// of the security page (add, rename, remove). The ceremonies run in the browser through
// @simplewebauthn/browser (navigator.credentials.create / .get); the service makes the options and
// checks the answers (PasskeyService). Adding and removing need a recent sign-in: a
// REAUTHENTICATION_REQUIRED refusal opens the in-place Reauthenticate prompt (reauth.ts), and the
// interrupted action runs again after it.
import { browserSupportsWebAuthn, startAuthentication, startRegistration } from "@simplewebauthn/browser";
import type { TokenPair } from "../../gen/identity/v1/common_pb.js";
import type { Passkey } from "../../gen/identity/v1/passkey_service_pb.js";
import { api, ensureFreshToken } from "./api.js";
import { reauthenticate, refusedFor } from "./reauth.js";
import { byId, show, when } from "./dom.js";

export interface PasskeysHost {
  act(button: HTMLButtonElement | null, action: () => Promise<void>): Promise<void>;
  showNotice(text: string): void;
  showError(text: string): void;
  /** Enters the signed-in page with a new session's tokens. */
  signedIn(tokens: TokenPair | undefined): Promise<void>;
  /** Reloads the activity (and who am I) after a change. */
  reload(): Promise<void>;
}

export interface PasskeysSection {
  /** Loads and shows the signed-in account's passkeys. */
  load(): Promise<void>;
  leave(): void;
}


/** What the browser's part of a ceremony failed with, as a sentence; undefined for a service error. */
function ceremonyFailure(err: unknown): string | undefined {
  const name = (err as { name?: string } | undefined)?.name;
  const code = (err as { code?: string } | undefined)?.code;
  if (name !== "WebAuthnError" && !(err instanceof DOMException)) return undefined;
  if (code === "ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED" || name === "InvalidStateError") return "This device already holds a passkey for your account.";
  if (name === "NotAllowedError" || code === "ERROR_CEREMONY_ABORTED") return "The passkey request was cancelled or timed out.";
  return "Your browser could not use a passkey here.";
}

export function setupPasskeys(host: PasskeysHost): PasskeysSection {
  /** The action a REAUTHENTICATION_REQUIRED refusal interrupted: it runs again after Reauthenticate. */
  let pending: (() => Promise<void>) | undefined;

  /** Runs `action`; a refusal for an old sign-in opens the prompt, a browser-side failure is said plainly. */
  async function guarded(action: () => Promise<void>): Promise<void> {
    try {
      await ensureFreshToken();
      await action();
    } catch (err) {
      if (refusedFor(err, "REAUTHENTICATION_REQUIRED")) {
        pending = action;
        show(byId("passkey-reauth-form"), true);
        byId<HTMLFormElement>("passkey-reauth-form").querySelector<HTMLInputElement>("input[name=password]")?.focus();
      }
      const sentence = ceremonyFailure(err);
      if (sentence === undefined) throw err;
      host.showError(sentence);
    }
  }

  async function load(): Promise<void> {
    await ensureFreshToken();
    const { passkeys } = await api().passkeys.listPasskeys({});
    const list = byId("passkey-list");
    list.replaceChildren(...passkeys.map(item));
    if (passkeys.length === 0) {
      const none = document.createElement("li");
      none.className = "hint";
      none.textContent = "No passkeys yet.";
      list.append(none);
    }
  }

  function item(passkey: Passkey): HTMLLIElement {
    const li = document.createElement("li");
    li.dataset.passkeyId = passkey.id;
    li.className = "passkey";
    const name = document.createElement("input");
    name.name = "name";
    name.value = passkey.name;
    name.setAttribute("aria-label", "Passkey name");
    const facts = document.createElement("span");
    facts.className = "hint";
    const synced = passkey.backedUp ? "synced" : "this device only";
    facts.textContent = ` Added ${when(passkey.createTime)} · ${passkey.lastUseTime ? `last used ${when(passkey.lastUseTime)}` : "not used yet"} · ${synced}`;
    const rename = document.createElement("button");
    rename.type = "button";
    rename.className = "secondary";
    rename.textContent = "Rename";
    rename.dataset.action = "rename";
    rename.addEventListener("click", () =>
      void host.act(rename, () =>
        guarded(async () => {
          await api().passkeys.renamePasskey({ passkeyId: passkey.id, name: name.value });
          await Promise.all([load(), host.reload()]);
          host.showNotice("The passkey was renamed.");
        }),
      ),
    );
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "danger";
    remove.textContent = "Remove";
    remove.dataset.action = "remove";
    remove.addEventListener("click", () =>
      void host.act(remove, () =>
        guarded(async () => {
          await api().passkeys.removePasskey({ passkeyId: passkey.id });
          await Promise.all([load(), host.reload()]);
          host.showNotice("The passkey was removed: it can no longer sign in.");
        }),
      ),
    );
    li.append(name, rename, remove, facts);
    return li;
  }

  const addForm = byId<HTMLFormElement>("passkey-add-form");
  addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = (addForm.elements.namedItem("name") as HTMLInputElement).value;
    void host.act(addForm.querySelector("button[type=submit]"), () =>
      guarded(async () => {
        const start = await api().passkeys.startPasskeyRegistration({});
        const response = await startRegistration({ optionsJSON: JSON.parse(start.optionsJson) as Parameters<typeof startRegistration>[0]["optionsJSON"] });
        await api().passkeys.finishPasskeyRegistration({ challengeId: start.challengeId, responseJson: JSON.stringify(response), name });
        addForm.reset();
        await Promise.all([load(), host.reload()]);
        host.showNotice("Passkey added: you can sign in with it now.");
      }),
    );
  });

  const reauthForm = byId<HTMLFormElement>("passkey-reauth-form");
  reauthForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void host.act(reauthForm.querySelector("button[type=submit]"), async () => {
      await reauthenticate(reauthForm);
      show(reauthForm, false);
      const next = pending;
      pending = undefined;
      if (next) await guarded(next);
    });
  });
  byId("passkey-reauth-cancel").addEventListener("click", () => {
    pending = undefined;
    reauthForm.reset();
    show(reauthForm, false);
  });

  // ---- signing in (the signed-out page) ----

  const signInButton = byId<HTMLButtonElement>("passkey-login-button");
  if (!browserSupportsWebAuthn()) {
    signInButton.disabled = true;
    byId("passkey-login-hint").textContent = "This browser cannot use passkeys here.";
  }
  signInButton.addEventListener("click", () =>
    void host.act(signInButton, async () => {
      const start = await api().passkeys.startPasskeyLogin({});
      let response;
      try {
        response = await startAuthentication({ optionsJSON: JSON.parse(start.optionsJson) as Parameters<typeof startAuthentication>[0]["optionsJSON"] });
      } catch (err) {
        const sentence = ceremonyFailure(err);
        if (sentence === undefined) throw err;
        host.showError(sentence);
        return;
      }
      const res = await api().passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: JSON.stringify(response) });
      await host.signedIn(res.tokens);
      host.showNotice("You are signed in with your passkey.");
    }),
  );

  function leave(): void {
    pending = undefined;
    addForm.reset();
    reauthForm.reset();
    show(reauthForm, false);
    byId("passkey-list").replaceChildren();
  }

  return { load, leave };
}
