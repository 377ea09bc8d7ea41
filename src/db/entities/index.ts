export * from "./user.js";
export * from "./session.js";
export * from "./signing-key.js";
export * from "./audit-event.js";
import { UserEntity } from "./user.js";
import { SessionEntity, RefreshTokenEntity } from "./session.js";
import { SigningKeyEntity } from "./signing-key.js";
import { AuditEventEntity } from "./audit-event.js";

export const entities = [UserEntity, SessionEntity, RefreshTokenEntity, SigningKeyEntity, AuditEventEntity];
