// Sign-in with an OpenID Connect provider: "Sign in with <name>" buttons (ListProviders), the
// page the provider sends the browser back to (this app's own URL with ?code&state&iss), and the
// provider accounts linked to the signed-in account (list, link, unlink) in its security area.
//
// The redirect URI is the app's own origin + "/": allowed by the service as PUBLIC_URL's origin
// (or listed in OIDC_REDIRECT_URIS). What the callback needs besides the URL (sign-in or link,
// the transport) waits in sessionStorage, for this tab only; the state itself is bound server-side.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { MfaChallenge, TokenPair } from "../../gen/identity/v1/common_pb.js";
import { FederationService, type LinkedIdentity } from "../../gen/identity/v1/federation_service_pb.js";
import { bearer, ensureFreshToken, transportName, type TransportName } from "./api.js";
import { byId } from "./dom.js";

export type SignInResult = { case: "tokens"; value: TokenPair } | { case: "mfaChallenge"; value: MfaChallenge } | { case: undefined };

export interface FederationHost {
  act(button: HTMLButtonElement | null, action: () => Promise<void>): Promise<void>;
  showNotice(text: string): void;
  /** Signs in with tokens, or moves on to the MFA step (main.ts). */
  signInResult(result: SignInResult, welcome: string): Promise<void>;
  /** Reloads who am I and the activity after a change. */
  reload(): Promise<void>;
}

/** A provider's return to this page, taken off the URL. */
export interface ProviderReturn {
  readonly purpose: "login" | "link";
  readonly transport: TransportName;
  readonly params: { readonly state: string; readonly code: string; readonly iss: string };
  /** The provider's own refusal (`error`, e.g. access_denied), when it sent one instead of a code. */
  readonly error: string;
}

export interface FederationSection {
  /** Shows a button per configured provider on the sign-in page. */
  showProviders(): Promise<void>;
  /** Finishes the sign-in or link the provider returned for. */
  finish(back: ProviderReturn): Promise<void>;
  /** Loads the signed-in account's linked providers. */
  load(): Promise<void>;
  leave(): void;
}

const PENDING_KEY = "identity-federation-pending";


/** Where providers send the browser back. */
function redirectUri(): string {
  return `${window.location.origin}/`;
}

function client(name: TransportName = transportName()): Client<typeof FederationService> {
  const options = { baseUrl: window.location.origin, interceptors: [bearer] };
  return createClient(FederationService, name === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options));
}

/**
 * The provider's return, when this page load is one: read once, and the URL cleaned of it (a
 * reload must not present the spent state again).
 */
export function takeProviderReturn(): ProviderReturn | undefined {
  const url = new URL(window.location.href);
  const state = url.searchParams.get("state");
  if (state === null || (!url.searchParams.has("code") && !url.searchParams.has("error"))) return undefined;
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "{}") as { purpose?: "login" | "link"; transport?: TransportName };
  sessionStorage.removeItem(PENDING_KEY);
  const back: ProviderReturn = {
    purpose: pending.purpose === "link" ? "link" : "login",
    transport: pending.transport === "connect" ? "connect" : "grpc-web",
    params: { state, code: url.searchParams.get("code") ?? "", iss: url.searchParams.get("iss") ?? "" },
    error: url.searchParams.get("error") ?? "",
  };
  for (const name of ["state", "code", "iss", "error", "error_description", "session_state"]) url.searchParams.delete(name);
  url.searchParams.set("transport", back.transport);
  window.history.replaceState(null, "", url);
  return back;
}

function go(purpose: "login" | "link", authorizationUrl: string): void {
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ purpose, transport: transportName() }));
  window.location.assign(authorizationUrl);
}

export function setupFederation(host: FederationHost): FederationSection {
  const names = new Map<string, string>();

  function identityRow(identity: LinkedIdentity): HTMLLIElement {
    const item = document.createElement("li");
    item.dataset.provider = identity.provider;
    const label = names.get(identity.provider) ?? identity.provider;
    const since = identity.createTime ? timestampDate(identity.createTime).toLocaleDateString() : "";
    item.append(`${label}${identity.email ? ` (${identity.email})` : ""}${since ? `, linked ${since}` : ""} `);
    const unlink = document.createElement("button");
    unlink.type = "button";
    unlink.className = "danger";
    unlink.textContent = "Unlink";
    unlink.addEventListener("click", () =>
      void host.act(unlink, async () => {
        await ensureFreshToken();
        await client().unlinkIdentity({ provider: identity.provider, subject: identity.subject });
        await Promise.all([load(), host.reload()]);
        host.showNotice(`${label} is no longer linked.`);
      }),
    );
    item.append(unlink);
    return item;
  }

  async function load(): Promise<void> {
    if (names.size === 0) return;
    await ensureFreshToken();
    const { identities } = await client().listLinkedIdentities({});
    byId("linked-identity-list").replaceChildren(...identities.map(identityRow));
    byId("linked-identities-empty").hidden = identities.length > 0;
  }

  return {
    async showProviders() {
      let providers: ReadonlyArray<{ id: string; name: string }> = [];
      try {
        providers = (await client().listProviders({})).providers;
      } catch {
        providers = [];
      }
      for (const p of providers) names.set(p.id, p.name);
      const buttons = providers.map((p) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary";
        button.dataset.provider = p.id;
        button.textContent = `Sign in with ${p.name}`;
        button.addEventListener("click", () =>
          void host.act(button, async () => {
            const started = await client().startFederatedLogin({ provider: p.id, redirectUri: redirectUri() });
            go("login", started.authorizationUrl);
          }),
        );
        return button;
      });
      byId("federation-buttons").replaceChildren(...buttons);
      byId("federation-card").hidden = providers.length === 0;
      byId("linked-identities").hidden = providers.length === 0;
      const link = byId<HTMLSelectElement>("link-provider");
      link.replaceChildren(...providers.map((p) => new Option(p.name, p.id)));
    },

    async finish(back) {
      await host.act(null, async () => {
        if (back.error !== "") throw new Error(`The provider did not sign you in (${back.error}).`);
        if (back.purpose === "link") {
          await ensureFreshToken();
          const { identity } = await client(back.transport).finishLinkIdentity(back.params);
          await Promise.all([load(), host.reload()]);
          host.showNotice(`${names.get(identity?.provider ?? "") ?? "The provider"} is now linked: you can sign in with it.`);
          return;
        }
        const res = await client(back.transport).finishFederatedLogin(back.params);
        await host.signInResult(res.login?.result ?? { case: undefined }, res.newUser ? "Welcome! Your account was created and you are signed in." : "You are signed in.");
      });
    },

    load,

    leave() {
      byId("linked-identity-list").replaceChildren();
    },
  };
}

/** Binds the link form (once). */
export function bindLinkForm(host: FederationHost): void {
  const f = byId<HTMLFormElement>("link-identity-form");
  f.addEventListener("submit", (event) => {
    event.preventDefault();
    void host.act(f.querySelector<HTMLButtonElement>("button[type=submit]"), async () => {
      await ensureFreshToken();
      const provider = (f.elements.namedItem("provider") as HTMLSelectElement).value;
      const started = await client().startLinkIdentity({ provider, redirectUri: redirectUri() });
      go("link", started.authorizationUrl);
    });
  });
}
