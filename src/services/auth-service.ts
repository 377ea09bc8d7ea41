// identity.v1.AuthService: proto <-> domain mapping only.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type {
  AuthService,
  ChangeEmailRequest,
  ChangePasswordRequest,
  ChangePhoneRequest,
  ConfirmContactChangeRequest,
  DeleteAccountRequest,
  ListActivityRequest,
  ListSessionsRequest,
  LoginRequest,
  LogoutRequest,
  ReauthenticateRequest,
  RequestPasswordResetRequest,
  ResetPasswordRequest,
  RevokeSessionRequest,
  SignUpRequest,
  UpdateProfileRequest,
  WhoAmIRequest,
} from "../../gen/identity/v1/auth_service_pb.js";
import { MfaMethod } from "../../gen/identity/v1/common_pb.js";
import type { ContactChange } from "../domain/accounts/contact-change.js";
import type { Profiles } from "../domain/accounts/profile.js";
import type { Reauthentication, ReauthenticationInput } from "../domain/accounts/reauthentication.js";
import type { Accounts } from "../domain/accounts/accounts.js";
import type { AuditLog } from "../domain/audit/audit.js";
import type { Callers } from "../domain/callers/callers.js";
import { AppError, invalidField } from "../domain/errors.js";
import { pageOf } from "../domain/paging.js";
import type { PasswordReset } from "../domain/accounts/password-reset.js";
import type { Sessions } from "../domain/sessions/sessions.js";
import { clearRefreshCookie, deliverTokens } from "./browser-session.js";
import { clientMeta, SignedInRpcs } from "./call.js";
import { auditEventToProto, challengeToProto, sessionToProto, userToProto } from "./mappers.js";
import { channelFromProto } from "./otp-service.js";
import { codeSendOutcomes, signInOutcomes, type RpcMetrics } from "./rpc-metrics.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AuthServiceDeps {
  readonly accounts: Accounts;
  readonly callers: Callers;
  readonly sessions: Sessions;
  readonly audit: AuditLog;
  readonly passwordReset: PasswordReset;
  readonly profiles: Profiles;
  readonly contactChange: ContactChange;
  readonly reauthentication: Reauthentication;
}

/** Reauthenticate's second factors; a method it does not take is "other" (refused by the domain). */
function reauthMethod(method: MfaMethod): ReauthenticationInput["mfaMethod"] {
  if (method === MfaMethod.UNSPECIFIED) return "none";
  if (method === MfaMethod.TOTP) return "totp";
  if (method === MfaMethod.BACKUP_CODE) return "backup";
  return "other";
}

/** Metrics that follow from an AuthService RPC's outcome (see rpc-metrics.ts). */
export const authMetrics: RpcMetrics<typeof AuthService> = {
  login: signInOutcomes,
  requestPasswordReset: codeSendOutcomes,
};

export class AuthServiceImpl extends SignedInRpcs<AuthServiceDeps> implements ServiceImpl<typeof AuthService> {


  async signUp(req: SignUpRequest, ctx: HandlerContext) {
    const { user, tokens } = await this.deps.accounts.signUp(req, clientMeta(ctx));
    return { user: userToProto(user), tokens: deliverTokens(ctx, tokens) };
  }

  async login(req: LoginRequest, ctx: HandlerContext) {
    const { user, result } = await this.deps.accounts.login(req.identifier, req.password, clientMeta(ctx));
    return result.kind === "tokens"
      ? { result: { case: "tokens" as const, value: deliverTokens(ctx, result.tokens) }, user: userToProto(user) }
      : { result: { case: "mfaChallenge" as const, value: challengeToProto(result.challenge) } };
  }

  async logout(req: LogoutRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const ended = req.allSessions
      ? await this.deps.sessions.revokeAll(caller.userId, "logout")
      : Number(await this.deps.sessions.revoke(caller.userId, caller.sessionId, "logout"));
    await this.deps.audit.record({
      userId: caller.userId,
      type: "LOGOUT",
      client: clientMeta(ctx),
      sessionId: caller.sessionId,
      details: { all_sessions: String(req.allSessions) },
    });
    clearRefreshCookie(ctx);
    return { endedSessionCount: ended };
  }

  async whoAmI(_req: WhoAmIRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const user = await this.deps.accounts.get(caller.userId);
    return { user: userToProto(user), sessionId: caller.sessionId, amr: [...caller.amr] };
  }

  async changePassword(req: ChangePasswordRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const ended = await this.deps.accounts.changePassword(caller, req.currentPassword, req.newPassword, clientMeta(ctx));
    return { endedSessionCount: ended };
  }

  async requestPasswordReset(req: RequestPasswordResetRequest, ctx: HandlerContext) {
    const sent = await this.deps.passwordReset.request(channelFromProto(req.channel), req.destination, clientMeta(ctx));
    return { expireTime: timestampFromDate(sent.expiresAt) };
  }

  async resetPassword(req: ResetPasswordRequest, ctx: HandlerContext) {
    await this.deps.passwordReset.reset(channelFromProto(req.channel), req.destination, req.code, req.newPassword, clientMeta(ctx));
    return {};
  }

  async deleteAccount(req: DeleteAccountRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    await this.deps.accounts.delete(caller, req.password, clientMeta(ctx));
    clearRefreshCookie(ctx);
    return {};
  }

  async listSessions(req: ListSessionsRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const page = await this.deps.sessions.listActive(caller.userId, pageOf(req.pageSize, req.pageToken));
    return { sessions: page.sessions.map((s) => sessionToProto(s, caller.sessionId)), nextPageToken: page.nextPageToken };
  }

  async revokeSession(req: RevokeSessionRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    if (!UUID.test(req.sessionId)) {
      throw invalidField("session_id", "INVALID_ID", "is not a session id");
    }
    const revoked = await this.deps.sessions.revoke(caller.userId, req.sessionId.toLowerCase(), "revoked");
    if (!revoked) throw new AppError("SESSION_NOT_FOUND", `session ${req.sessionId} not active for ${caller.userId}`);
    await this.deps.audit.record({ userId: caller.userId, type: "SESSION_REVOKED", client: clientMeta(ctx), sessionId: req.sessionId.toLowerCase() });
    if (req.sessionId.toLowerCase() === caller.sessionId) clearRefreshCookie(ctx);
    return {};
  }

  async listActivity(req: ListActivityRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const page = await this.deps.audit.list(caller.userId, pageOf(req.pageSize, req.pageToken));
    return { events: page.events.map(auditEventToProto), nextPageToken: page.nextPageToken };
  }

  async updateProfile(req: UpdateProfileRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const p = req.profile;
    const input = {
      display_name: p?.displayName ?? "",
      username: p?.username ?? "",
      given_name: p?.givenName ?? "",
      family_name: p?.familyName ?? "",
      country: p?.country ?? "",
      birth_date: p?.birthDate ?? "",
    };
    const user = await this.deps.profiles.update(caller, input, req.updateMask?.paths ?? [], clientMeta(ctx));
    return { user: userToProto(user) };
  }

  async changeEmail(req: ChangeEmailRequest, ctx: HandlerContext) {
    const sent = await this.deps.contactChange.request(await this.caller(ctx), "email", req.email, clientMeta(ctx));
    return { expireTime: timestampFromDate(sent.expiresAt) };
  }

  async changePhone(req: ChangePhoneRequest, ctx: HandlerContext) {
    const sent = await this.deps.contactChange.request(await this.caller(ctx), "sms", req.phone, clientMeta(ctx));
    return { expireTime: timestampFromDate(sent.expiresAt) };
  }

  async confirmContactChange(req: ConfirmContactChangeRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const user = await this.deps.contactChange.confirm(caller, channelFromProto(req.channel), req.destination, req.code, clientMeta(ctx));
    return { user: userToProto(user) };
  }

  async reauthenticate(req: ReauthenticateRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const input = { password: req.password, mfaMethod: reauthMethod(req.mfaMethod), mfaCode: req.mfaCode };
    const tokens = await this.deps.reauthentication.reauthenticate(caller, input, clientMeta(ctx));
    return { tokens: deliverTokens(ctx, tokens) };
  }
}
