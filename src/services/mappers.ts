// Domain rows to proto messages.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MfaMethod, type MfaChallengeSchema, type UserSchema, type TokenPairSchema } from "../../gen/identity/v1/common_pb.js";
import type { Challenge } from "../domain/mfa/mfa.js";
import { AuditEventType, type AuditEventSchema, type SessionSchema } from "../../gen/identity/v1/auth_service_pb.js";
import type { AuditEventRow, SessionRow, UserRow } from "../store/index.js";
import type { TokenPair } from "../domain/sessions/session-tokens.js";

export function userToProto(user: UserRow): MessageInitShape<typeof UserSchema> {
  return {
    id: user.id,
    email: user.email ?? "",
    emailVerified: user.emailVerifiedAt !== null,
    username: user.username ?? "",
    phone: user.phone ?? "",
    phoneVerified: user.phoneVerifiedAt !== null,
    displayName: user.displayName,
    role: user.role,
    mfaEnabled: user.mfaEnabledAt !== null,
    hasPassword: user.passwordHash !== null,
    createTime: timestampFromDate(user.createdAt),
  };
}

export function tokensToProto(tokens: TokenPair): MessageInitShape<typeof TokenPairSchema> {
  return {
    accessToken: tokens.accessToken,
    accessTokenExpireTime: timestampFromDate(tokens.accessTokenExpiresAt),
    refreshToken: tokens.refreshToken,
    refreshTokenExpireTime: timestampFromDate(tokens.refreshTokenExpiresAt),
    tokenType: "Bearer",
    sessionId: tokens.sessionId,
  };
}

export function challengeToProto(challenge: Challenge): MessageInitShape<typeof MfaChallengeSchema> {
  return {
    challengeToken: challenge.token,
    expireTime: timestampFromDate(challenge.expiresAt),
    methods: [MfaMethod.TOTP, MfaMethod.BACKUP_CODE],
  };
}

export function sessionToProto(session: SessionRow, currentSessionId: string): MessageInitShape<typeof SessionSchema> {
  return {
    id: session.id,
    createTime: timestampFromDate(session.createdAt),
    lastRefreshTime: timestampFromDate(session.lastRefreshAt),
    expireTime: timestampFromDate(session.absoluteExpiresAt),
    userAgent: session.userAgent,
    ipAddress: session.ipAddress,
    amr: session.amr,
    current: session.id === currentSessionId,
  };
}

export function auditEventToProto(event: AuditEventRow): MessageInitShape<typeof AuditEventSchema> {
  return {
    id: event.id,
    type: AuditEventType[event.type as keyof typeof AuditEventType] ?? AuditEventType.UNSPECIFIED,
    createTime: timestampFromDate(event.createdAt),
    ipAddress: event.ipAddress,
    userAgent: event.userAgent,
    sessionId: event.sessionId ?? "",
    details: event.details,
    caller: event.caller ?? "",
    actor: event.actor ?? "",
    byAdministrator: event.actor !== null && event.actor !== undefined,
  };
}
