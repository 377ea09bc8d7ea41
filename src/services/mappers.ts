// Domain rows to proto messages.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MfaMethod, type MfaChallengeSchema, type UserSchema, type TokenPairSchema } from "../../gen/identity/v1/common_pb.js";
import type { Challenge, MfaMethodName } from "../domain/mfa/mfa.js";
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
    givenName: user.givenName,
    familyName: user.familyName,
    country: user.country ?? "",
    birthDate: user.birthDate ?? "",
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
    methods: challenge.methods.map(mfaMethodToProto),
  };
}

const MFA_METHODS: Record<MfaMethodName, MfaMethod> = {
  totp: MfaMethod.TOTP,
  backup: MfaMethod.BACKUP_CODE,
  email: MfaMethod.EMAIL_CODE,
  sms: MfaMethod.SMS_CODE,
};

export function mfaMethodToProto(method: MfaMethodName): MfaMethod {
  return MFA_METHODS[method];
}

/** The domain name of a proto method; undefined for UNSPECIFIED and values this build does not know. */
export function mfaMethodFromProto(method: MfaMethod): MfaMethodName | undefined {
  return (Object.keys(MFA_METHODS) as MfaMethodName[]).find((name) => MFA_METHODS[name] === method);
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
