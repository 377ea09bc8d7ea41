// identity.v1.AdminService: proto <-> domain mapping only. Who may call it is decided before any
// handler runs (AUDIENCE_ADMIN in policy.ts), which leaves the actor in the call's context.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  UserStatus,
  type AdminService,
  type AdminUserSchema,
  type DeleteUserRequest,
  type DisableUserRequest,
  type EnableUserRequest,
  type GetUserRequest,
  type ListUserActivityRequest,
  type ListUsersRequest,
  type ResetUserMfaRequest,
  type RestoreUserRequest,
  type RevokeUserSessionsRequest,
  type SetUserRoleRequest,
} from "../../gen/identity/v1/admin_service_pb.js";
import type { Administration } from "../domain/admin/admin.js";
import { hasControlCharacters } from "../domain/accounts/text.js";
import { Violations } from "../domain/errors.js";
import { pageOf } from "../domain/paging.js";
import type { AdminUserRow, UserFilter, UserStatus as StoredStatus } from "../store/index.js";
import { adminActor, clientMeta } from "./call.js";
import { auditEventToProto, userToProto } from "./mappers.js";

export interface AdminServiceDeps {
  readonly administration: Administration;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const MAX_REASON_LENGTH = 500;
const MAX_PREFIX_LENGTH = 254;
const PHONE_PREFIX = /^\+\d{0,15}$/;

const STATUS_FROM_PROTO: ReadonlyMap<UserStatus, StoredStatus | undefined> = new Map([
  [UserStatus.UNSPECIFIED, undefined],
  [UserStatus.ACTIVE, "active"],
  [UserStatus.DISABLED, "disabled"],
  [UserStatus.DELETED, "deleted"],
]);

export class AdminServiceImpl implements ServiceImpl<typeof AdminService> {
  constructor(private readonly deps: AdminServiceDeps) {}

  private adminUserToProto(row: AdminUserRow): MessageInitShape<typeof AdminUserSchema> {
    const { user } = row;
    const status = user.deletedAt !== null ? UserStatus.DELETED : user.status === "disabled" ? UserStatus.DISABLED : UserStatus.ACTIVE;
    return {
      user: userToProto(user),
      status,
      disableTime: status === UserStatus.DISABLED && user.disabledAt ? timestampFromDate(user.disabledAt) : undefined,
      deleteTime: user.deletedAt ? timestampFromDate(user.deletedAt) : undefined,
      restoreDeadline: user.deletedAt ? timestampFromDate(this.deps.administration.restoreDeadline(user.deletedAt)) : undefined,
      activeSessions: row.activeSessions,
      lastLoginTime: row.lastLoginAt ? timestampFromDate(row.lastLoginAt) : undefined,
    };
  }

  async listUsers(req: ListUsersRequest) {
    const filter = this.filterOf(req);
    const page = await this.deps.administration.list(filter, pageOf(req.pageSize, req.pageToken));
    return { users: page.users.map((u) => this.adminUserToProto(u)), nextPageToken: page.nextPageToken };
  }

  async getUser(req: GetUserRequest) {
    return { user: this.adminUserToProto(await this.deps.administration.get(userIdOf(req.userId))) };
  }

  async setUserRole(req: SetUserRoleRequest, ctx: HandlerContext) {
    const violations = new Violations();
    const userId = checkUserId(violations, req.userId);
    if (!this.deps.administration.roles.has(req.role)) violations.add("role", "UNKNOWN_ROLE", `must be one of ${this.deps.administration.roles.all.join(", ")}`);
    violations.throwIfAny();
    const user = await this.deps.administration.setRole(adminActor(ctx), userId, req.role, req.revokeSessions, clientMeta(ctx));
    return { user: this.adminUserToProto(user) };
  }

  async disableUser(req: DisableUserRequest, ctx: HandlerContext) {
    const [userId, reason] = idAndReason(req.userId, req.reason, false);
    return { user: this.adminUserToProto(await this.deps.administration.disable(adminActor(ctx), userId, reason, clientMeta(ctx))) };
  }

  async enableUser(req: EnableUserRequest, ctx: HandlerContext) {
    return { user: this.adminUserToProto(await this.deps.administration.enable(adminActor(ctx), userIdOf(req.userId), clientMeta(ctx))) };
  }

  async deleteUser(req: DeleteUserRequest, ctx: HandlerContext) {
    const [userId, reason] = idAndReason(req.userId, req.reason, true);
    return { user: this.adminUserToProto(await this.deps.administration.delete(adminActor(ctx), userId, reason, clientMeta(ctx))) };
  }

  async restoreUser(req: RestoreUserRequest, ctx: HandlerContext) {
    return { user: this.adminUserToProto(await this.deps.administration.restore(adminActor(ctx), userIdOf(req.userId), clientMeta(ctx))) };
  }

  async revokeUserSessions(req: RevokeUserSessionsRequest, ctx: HandlerContext) {
    return { revokedSessions: await this.deps.administration.revokeSessions(adminActor(ctx), userIdOf(req.userId), clientMeta(ctx)) };
  }

  async listUserActivity(req: ListUserActivityRequest) {
    const userId = userIdOf(req.userId);
    const page = await this.deps.administration.activity(userId, pageOf(req.pageSize, req.pageToken));
    return { events: page.events.map(auditEventToProto), nextPageToken: page.nextPageToken };
  }

  async resetUserMfa(req: ResetUserMfaRequest, ctx: HandlerContext) {
    const [userId, reason] = idAndReason(req.userId, req.reason, false);
    return { user: this.adminUserToProto(await this.deps.administration.resetMfa(adminActor(ctx), userId, reason, clientMeta(ctx))) };
  }

  /** The request's filter, in the canonical forms the store compares (INVALID_ARGUMENT for a bad one). */
  private filterOf(req: ListUsersRequest): UserFilter {
    const violations = new Violations();
    const text = (field: string, value: string): string | undefined => {
      const trimmed = value.normalize("NFKC").trim();
      if (trimmed === "") return undefined;
      if (trimmed.length > MAX_PREFIX_LENGTH) violations.add(field, "TOO_LONG", `must be at most ${MAX_PREFIX_LENGTH} characters`);
      else if (hasControlCharacters(trimmed)) violations.add(field, "INVALID_CHARACTERS", "must not contain control or formatting characters");
      return trimmed.toLowerCase();
    };
    const emailPrefix = text("email_prefix", req.emailPrefix);
    const usernamePrefix = text("username_prefix", req.usernamePrefix);
    const phonePrefix = req.phonePrefix.trim() === "" ? undefined : req.phonePrefix.trim();
    if (phonePrefix !== undefined && !PHONE_PREFIX.test(phonePrefix)) violations.add("phone_prefix", "INVALID_PHONE", "must be '+' and up to 15 digits");
    const role = req.role === "" ? undefined : req.role;
    if (role !== undefined && !this.deps.administration.roles.has(role)) violations.add("role", "UNKNOWN_ROLE", `must be one of ${this.deps.administration.roles.all.join(", ")}`);
    if (!STATUS_FROM_PROTO.has(req.status)) violations.add("status", "INVALID_STATUS", "is not a UserStatus");
    const after = timeOf(violations, "create_time_after", req.createTimeAfter);
    const before = timeOf(violations, "create_time_before", req.createTimeBefore);
    if (after && before && after >= before) violations.add("create_time_before", "OUT_OF_RANGE", "must be after create_time_after");
    violations.throwIfAny();
    return {
      ...(emailPrefix !== undefined && { emailPrefix }),
      ...(usernamePrefix !== undefined && { usernamePrefix }),
      ...(phonePrefix !== undefined && { phonePrefix }),
      ...(role !== undefined && { role }),
      ...(STATUS_FROM_PROTO.get(req.status) !== undefined && { status: STATUS_FROM_PROTO.get(req.status) }),
      ...(after !== undefined && { createdAtOrAfter: after }),
      ...(before !== undefined && { createdBefore: before }),
    };
  }
}

function timeOf(violations: Violations, field: string, value: Timestamp | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = timestampDate(value);
  const ms = date.getTime();
  if (!(ms >= Date.UTC(1970, 0, 1) && ms < Date.UTC(10000, 0, 1))) {
    violations.add(field, "OUT_OF_RANGE", "must be between 1970 and 9999");
    return undefined;
  }
  return date;
}

function checkUserId(violations: Violations, value: string): string {
  if (!UUID.test(value)) violations.add("user_id", "INVALID_ID", "is not an account id");
  return value.toLowerCase();
}

function userIdOf(value: string): string {
  const violations = new Violations();
  const id = checkUserId(violations, value);
  violations.throwIfAny();
  return id;
}

function idAndReason(rawId: string, rawReason: string, required: boolean): [string, string] {
  const violations = new Violations();
  const id = checkUserId(violations, rawId);
  const reason = rawReason.trim();
  if (required && reason === "") violations.add("reason", "REQUIRED", "is required");
  else if ([...reason].length > MAX_REASON_LENGTH) violations.add("reason", "TOO_LONG", `must be at most ${MAX_REASON_LENGTH} characters`);
  else if (hasControlCharacters(reason)) violations.add("reason", "INVALID_CHARACTERS", "must not contain control, invisible formatting or line-break characters");
  violations.throwIfAny();
  return [id, reason];
}
