// Sign-in with an OpenID Connect provider, and the provider identities linked to an account.
//
// A sign-in is started (StartFederatedLogin: a state, a nonce and a PKCE verifier, bound
// server-side for one use and FEDERATION_STATE_TTL_SECONDS) and finished (FinishFederatedLogin:
// the state taken once, the code exchanged, the ID token checked). Then, in this order:
//   1. the provider's subject is linked to an account: that account signs in;
//   2. an account has the provider's email address, verified here, and the provider asserts
//      `email_verified`: the identity is linked to it (audited) and it signs in;
//   3. an account has the address but either side has not verified it: refused
//      (FEDERATION_LINK_REQUIRED), nothing linked: the person signs in as they usually do and
//      links the provider explicitly (an unverified address proves nothing about who owns it);
//   4. else an account is created (DEFAULT_ROLE; its address verified only when the provider says so).
// Disabled and deleted accounts are refused as Login refuses them; a second factor is asked as
// at Login (the account's MFA challenge, completed by MfaService.VerifyMfa).
//
// Sessions it starts have `amr: ["fed"]`: RFC 8176 lists no value for "a federated identity
// provider vouched", and lets deployments use values of their own (section 2). The provider's
// own `amr` is not carried over: this service does not trust another party's second factor.
import type { FederatedIdentityRow, Store, UserRow } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import { randomToken, sealWith, sha256, unsealWith, type Keyring } from "../crypto.js";
import { AppError, invalidField, Violations, type ErrorReason } from "../errors.js";
import { normalizeEmail } from "../accounts/identifiers.js";
import { checkProfile, type ProfileRules } from "../accounts/profile.js";
import { requireLiveUser } from "../accounts/live-user.js";
import { requireRecentAuthentication } from "../accounts/reauthentication.js";
import { clientAddressKey, type RateLimits } from "../limits/rate-limits.js";
import type { SignIn, SignInResult } from "../sessions/sign-in.js";
import type { AuthorizationSecrets, OidcProviders, ProviderClaims } from "./providers.js";
import type { OidcProviderConfig } from "../../config.js";

/** `amr` of a session a provider's sign-in started (see above). */
export const FEDERATED_AMR: readonly string[] = ["fed"];

export interface FederationSettings {
  readonly stateTtlSec: number;
  /** PUBLIC_URL's origin: any redirect URI on it is allowed. */
  readonly allowedOrigin: string | undefined;
  /** OIDC_REDIRECT_URIS: allowed exactly. */
  readonly redirectUris: readonly string[];
  /** DEFAULT_ROLE. */
  readonly defaultRole: string;
  /** REAUTH_MAX_AGE_SECONDS: how recent a sign-in StartLinkIdentity needs. */
  readonly reauthMaxAgeSec: number;
  /** StartFederatedLogin / StartLinkIdentity per client address per hour. */
  readonly maxStartsPerIpPerHour: number;
}

export interface Started {
  readonly authorizationUrl: string;
  readonly state: string;
  readonly expiresAt: Date;
}

export interface FederatedSignIn {
  readonly user: UserRow;
  readonly result: SignInResult;
  readonly newUser: boolean;
  readonly linked: boolean;
}

export interface ProviderCallback {
  readonly state: string;
  readonly code: string;
  /** RFC 9207 `iss`, or empty. */
  readonly iss: string;
}

export interface Federation {
  providers(): ReadonlyArray<Pick<OidcProviderConfig, "id" | "name">>;
  startLogin(provider: string, redirectUri: string, client: ClientMeta): Promise<Started>;
  finishLogin(callback: ProviderCallback, client: ClientMeta): Promise<FederatedSignIn>;
  startLink(caller: Caller, provider: string, redirectUri: string, client: ClientMeta): Promise<Started>;
  finishLink(caller: Caller, callback: ProviderCallback, client: ClientMeta): Promise<FederatedIdentityRow>;
  list(caller: Caller): Promise<FederatedIdentityRow[]>;
  unlink(caller: Caller, provider: string, subject: string, client: ClientMeta): Promise<void>;
}

export interface FederationDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users" | "federation">;
  readonly providers: OidcProviders;
  readonly clock: Clock;
  readonly kek: Keyring;
  readonly limits: RateLimits;
  readonly signIn: SignIn;
  readonly audit: AuditLog;
  readonly settings: FederationSettings;
  /** For the provider's `name` as a display name (kept only when it passes sign-up's rules). */
  readonly profileRules: ProfileRules;
}

const HOUR_MS = 3_600_000;
const SECRETS_AAD = "federation-state:";

type Decision =
  | { readonly kind: "signed-in"; readonly value: FederatedSignIn }
  | { readonly kind: "refused"; readonly reason: ErrorReason; readonly userId: string | null; readonly message: string };

export function createFederation({ db, providers, clock, kek, limits, signIn, audit, settings, profileRules }: FederationDeps): Federation {
  function provider(id: string): OidcProviderConfig {
    const found = providers.get(id);
    if (!found) throw invalidField("provider", "UNKNOWN_PROVIDER", "is not a configured provider");
    return found;
  }

  /**
   * The redirect URI, when allowed: the code and state travel to it, so one an attacker chose would
   * hand them the victim's sign-in (an open redirect here is an account takeover).
   */
  function allowedRedirect(raw: string): string {
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      url = undefined;
    }
    const ok = url !== undefined && ["http:", "https:"].includes(url.protocol) && url.username === "" && url.password === "" && url.hash === "" && (
      (settings.allowedOrigin !== undefined && url.origin === settings.allowedOrigin) || settings.redirectUris.includes(url.href));
    if (!ok) throw invalidField("redirect_uri", "REDIRECT_URI_NOT_ALLOWED", "is not on PUBLIC_URL's origin nor listed in OIDC_REDIRECT_URIS");
    return url!.href;
  }

  async function start(providerId: string, redirectUriText: string, userId: string | null, client: ClientMeta): Promise<Started> {
    const chosen = provider(providerId);
    const redirectUri = allowedRedirect(redirectUriText);
    const state = randomToken(32);
    const secrets: AuthorizationSecrets = { nonce: randomToken(32), codeVerifier: randomToken(32) };
    // Discovery first: a provider that is down answers UNAVAILABLE having stored nothing.
    const url = await providers.authorizationUrl(chosen, redirectUri, state, secrets);
    await limits.take([{ key: `federation-start:ip:${clientAddressKey(client.ip)}`, limit: settings.maxStartsPerIpPerHour, windowMs: HOUR_MS }]);
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + settings.stateTtlSec * 1000);
    const stateHash = sha256(state);
    await db.federation.insertState(db.direct, {
      stateHash,
      provider: chosen.id,
      secretsSealed: sealWith(kek, Buffer.from(JSON.stringify(secrets)), SECRETS_AAD + stateHash.toString("hex")),
      redirectUri,
      purpose: userId === null ? "login" : "link",
      userId,
      createdAt: now,
      expiresAt,
    });
    return { authorizationUrl: url.href, state, expiresAt };
  }

  /** Takes the started sign-in (or link) once, and exchanges its code at the provider. */
  async function finish(callback: ProviderCallback, userId: string | null, client: ClientMeta): Promise<{ provider: OidcProviderConfig; claims: ProviderClaims }> {
    const violations = new Violations();
    if (callback.state === "") violations.add("state", "REQUIRED", "is required");
    if (callback.code === "") violations.add("code", "REQUIRED", "is required");
    violations.throwIfAny();
    const stateHash = sha256(callback.state);
    const taken = await db.federation.consumeState(db.direct, stateHash, clock.now());
    if (!taken) throw new AppError("FEDERATION_STATE_INVALID", "state unknown, spent or expired");
    // A link's state finishes only the link of the account that started it, and never a sign-in.
    if (taken.userId !== userId) throw new AppError("FEDERATION_STATE_INVALID", `state of ${taken.purpose} by ${taken.userId ?? "-"} presented by ${userId ?? "a sign-in"}`);
    const chosen = providers.get(taken.provider);
    if (!chosen) throw new AppError("FEDERATION_STATE_INVALID", `provider ${taken.provider} is no longer configured`);
    const secrets = JSON.parse(unsealWith(kek, taken.secretsSealed, SECRETS_AAD + stateHash.toString("hex")).plaintext.toString()) as AuthorizationSecrets;
    try {
      const claims = await providers.exchange(chosen, { redirectUri: taken.redirectUri, state: callback.state, code: callback.code, iss: callback.iss }, secrets);
      return { provider: chosen, claims };
    } catch (err) {
      if (err instanceof AppError && err.reason !== "PROVIDER_UNAVAILABLE") {
        await audit.record({ userId, type: "FEDERATED_LOGIN_FAILED", client, details: { provider: chosen.id, reason: err.reason } });
      }
      throw err;
    }
  }

  /** The provider's `name`, when sign-up would take it as a display name; else none. */
  function displayName(name: string): string {
    const violations = new Violations();
    const input = { display_name: name, username: "", given_name: "", family_name: "", country: "", birth_date: "" };
    const values = checkProfile(violations, input, ["display_name"], { ...profileRules, requiredFields: new Set() }, clock.now());
    return violations.empty ? (values.displayName ?? "") : "";
  }

  function inactive(user: UserRow): Decision | undefined {
    if (user.deletedAt !== null) return { kind: "refused", reason: "ACCOUNT_DELETED", userId: user.id, message: `federated sign-in to deleted account ${user.id}` };
    if (!db.users.isLive(user)) return { kind: "refused", reason: "ACCOUNT_DISABLED", userId: user.id, message: `federated sign-in to disabled account ${user.id}` };
    return undefined;
  }

  return {
    providers: () => providers.list.map(({ id, name }) => ({ id, name })),

    startLogin: (providerId, redirectUri, client) => start(providerId, redirectUri, null, client),

    async finishLogin(callback, client) {
      const { provider: chosen, claims } = await finish(callback, null, client);
      const email = claims.email === null ? null : (normalizeEmail(claims.email) ?? null);
      const decision = await db.transaction(async (tx): Promise<Decision> => {
        const now = clock.now();
        let user: UserRow | null = null;
        let newUser = false;
        let linked = false;
        const identity = await db.federation.findIdentity(tx, chosen.id, claims.subject);
        if (identity) {
          user = await db.users.get(tx, identity.userId);
        } else {
          const holder = email === null ? null : await db.users.findByIdentifier(tx, "email", email);
          if (holder) {
            if (!(claims.emailVerified && holder.emailVerifiedAt !== null)) {
              return { kind: "refused", reason: "FEDERATION_LINK_REQUIRED", userId: holder.id, message: `${chosen.id} address of ${holder.id} unverified (provider: ${claims.emailVerified}, here: ${holder.emailVerifiedAt !== null})` };
            }
            const refusal = inactive(holder);
            if (refusal) return refusal;
            if (!(await db.federation.link(tx, holder.id, chosen.id, claims.subject, email, now))) {
              throw new AppError("IDENTITY_ALREADY_LINKED", `${chosen.id} subject linked concurrently`);
            }
            await audit.record({ userId: holder.id, type: "IDENTITY_LINKED", client, details: { provider: chosen.id, how: "verified_email" } }, tx);
            user = holder;
            linked = true;
          } else {
            const created = await db.federation.createAccount(tx, {
              provider: chosen.id, subject: claims.subject, email, emailVerified: claims.emailVerified,
              displayName: displayName(claims.name), role: settings.defaultRole, now,
            });
            if (!created) return { kind: "refused", reason: "FEDERATION_LINK_REQUIRED", userId: null, message: `${chosen.id} address taken meanwhile` };
            user = await db.users.get(tx, created);
            newUser = true;
            await audit.record({ userId: user.id, type: "SIGN_UP", client, details: { method: "fed", provider: chosen.id } }, tx);
          }
        }
        const refusal = inactive(user);
        if (refusal) return refusal;
        // Tokens, or the account's MFA challenge (VerifyMfa records the sign-in then).
        const result = await signIn.complete(tx, user, FEDERATED_AMR, client);
        if (result.kind === "tokens") {
          await audit.record({
            userId: user.id, type: "FEDERATED_LOGIN", client, sessionId: result.tokens.sessionId,
            details: { method: "fed", provider: chosen.id, new_user: String(newUser) },
          }, tx);
        }
        return { kind: "signed-in", value: { user, result, newUser, linked } };
      });
      if (decision.kind === "refused") {
        // Recorded after the transaction: nothing else of the refused sign-in is stored.
        if (decision.userId !== null) {
          await audit.record({ userId: decision.userId, type: "FEDERATED_LOGIN_FAILED", client, details: { provider: chosen.id, reason: decision.reason } });
        }
        throw new AppError(decision.reason, decision.message);
      }
      return decision.value;
    },

    async startLink(caller, providerId, redirectUri, client) {
      requireRecentAuthentication(caller, clock, settings.reauthMaxAgeSec);
      await requireLiveUser(db, caller.userId);
      return start(providerId, redirectUri, caller.userId, client);
    },

    async finishLink(caller, callback, client) {
      await requireLiveUser(db, caller.userId);
      const { provider: chosen, claims } = await finish(callback, caller.userId, client);
      const email = claims.email === null ? null : (normalizeEmail(claims.email) ?? claims.email);
      return db.transaction(async (tx) => {
        const identity = await db.federation.link(tx, caller.userId, chosen.id, claims.subject, email, clock.now());
        if (!identity) throw new AppError("IDENTITY_ALREADY_LINKED", `${chosen.id} subject is linked to an account already`);
        await audit.record({ userId: caller.userId, type: "IDENTITY_LINKED", client, sessionId: caller.sessionId, details: { provider: chosen.id, how: "explicit" } }, tx);
        return identity;
      });
    },

    async list(caller) {
      await requireLiveUser(db, caller.userId);
      return db.federation.listIdentities(db.direct, caller.userId);
    },

    async unlink(caller, providerId, subject, client) {
      await requireLiveUser(db, caller.userId);
      await db.transaction(async (tx) => {
        const outcome = await db.federation.unlink(tx, caller.userId, providerId, subject);
        if (outcome === "not_found") throw new AppError("IDENTITY_NOT_FOUND", `${caller.userId} has no ${providerId} identity ${subject}`);
        if (outcome === "last_sign_in_method") throw new AppError("LAST_SIGN_IN_METHOD", `${providerId} identity is ${caller.userId}'s last way to sign in`);
        await audit.record({ userId: caller.userId, type: "IDENTITY_UNLINKED", client, sessionId: caller.sessionId, details: { provider: providerId } }, tx);
      });
    },
  };
}
