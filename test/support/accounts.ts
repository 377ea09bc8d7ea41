// Helpers of the contract suites: unique accounts, bearer headers, sign-up and login, audit and
// session rows. VerifyToken as a backend calls it is the context's t.verify (setup.ts); the
// stored-data fingerprint is in stored-data.ts.
import { randomUUID } from "node:crypto";
import type { Client, ConnectError } from "@connectrpc/connect";
import type { DataSource } from "typeorm";
import { expect } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import type { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import type { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import type { TokenPair } from "../../gen/identity/v1/common_pb.js";
import type { TokenService } from "../../gen/identity/v1/token_service_pb.js";

export const PASSWORD = "correct horse battery staple";

export type AuthClient = Client<typeof AuthService>;
export type TokenClient = Client<typeof TokenService>;
export type OtpClient = Client<typeof OtpService>;
export type MfaClient = Client<typeof MfaService>;

export function uniqueEmail(tag: string): string {
  return `${tag}-${randomUUID().slice(0, 13)}@example.com`;
}

export function uniqueUsername(tag: string): string {
  return `${tag}_${randomUUID().slice(0, 8)}`.toLowerCase();
}

let phoneSerial = Math.floor(Math.random() * 50);
/** A valid, unused-in-this-file US number (+1 415 555 01xx). */
export function uniquePhone(): string {
  return `+1415555${String(100 + (phoneSerial++ % 100)).padStart(4, "0")}`;
}

export function bearer(accessToken: string): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${accessToken}` } };
}

export interface TestAccount {
  readonly email: string;
  readonly password: string;
  readonly userId: string;
  readonly tokens: TokenPair;
}

/** Signs up a fresh account by email (plus any other fields given). */
export async function signUp(
  auth: AuthClient,
  tag: string,
  extra: { email?: string; username?: string; phone?: string; password?: string; displayName?: string } = {},
): Promise<TestAccount> {
  const email = extra.email ?? uniqueEmail(tag);
  const password = extra.password ?? PASSWORD;
  const response = await auth.signUp({ ...extra, email, password });
  expect(response.user?.id).toBeTruthy();
  expect(response.tokens?.accessToken).toBeTruthy();
  return { email, password, userId: response.user!.id, tokens: response.tokens! };
}

/** Logs in and returns the token pair (fails the test on an MFA challenge). */
export async function login(auth: AuthClient, identifier: string, password: string = PASSWORD): Promise<TokenPair> {
  const response = await auth.login({ identifier, password });
  expect(response.result.case).toBe("tokens");
  return response.result.value as TokenPair;
}

export interface AuditRow {
  readonly type: string;
  readonly session_id: string | null;
  readonly details: Record<string, string>;
}

/** The account's audit rows, oldest first. */
export async function auditRows(db: DataSource, userId: string): Promise<AuditRow[]> {
  return (await db.query(
    `SELECT type, session_id, details FROM audit_events WHERE user_id = $1 ORDER BY created_at, id`,
    [userId],
  )) as AuditRow[];
}

export interface SessionDbRow {
  readonly id: string;
  readonly revoked_at: Date | null;
  readonly revoke_reason: string | null;
}

export async function sessionRows(db: DataSource, userId: string): Promise<SessionDbRow[]> {
  return (await db.query(`SELECT id, revoked_at, revoke_reason FROM sessions WHERE user_id = $1 ORDER BY created_at, id`, [
    userId,
  ])) as SessionDbRow[];
}

/** BadRequest field violations as `{ field: reason }`. */
export function violationReasons(error: ConnectError): Record<string, string> {
  return Object.fromEntries(error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => [v.field, v.reason])));
}
