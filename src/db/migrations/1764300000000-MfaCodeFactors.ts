import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Issue 16, items 4 and 5: one-time codes as a second factor, and deleted or disabled accounts
 * told plainly after a correct password.
 */
export class MfaCodeFactors1764300000000 implements MigrationInterface {
  name = "MfaCodeFactors1764300000000";

  async up(q: QueryRunner): Promise<void> {
    // A code factor is a flag per account and channel, not an address: it names the account's
    // email address (or phone number) as it is now, and counts only while that address is
    // verified (store/mfa.ts, codeFactorUsable). A changed address carries the factor along once
    // proven; a removed or unverified one is no factor.
    await q.query(`
      CREATE TABLE mfa_code_factors (
        user_id uuid NOT NULL REFERENCES users (id),
        channel text NOT NULL CHECK (channel IN ('email', 'sms')),
        enabled_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, channel)
      )`);
    // Codes answering an MFA challenge (MfaService.SendMfaCode), bound to the challenge.
    await q.query(`ALTER TABLE otp_codes DROP CONSTRAINT otp_codes_purpose_check`);
    await q.query(`ALTER TABLE otp_codes ADD CONSTRAINT otp_codes_purpose_check CHECK (purpose IN ('login', 'verify_contact', 'password_reset', 'mfa'))`);
    // Login finds the account an identifier names among deleted ones too when no current account
    // has it (the newest deleted): the unique indexes cover only accounts not deleted.
    await q.query(`CREATE INDEX users_deleted_email_idx ON users (lower(email), deleted_at DESC) WHERE deleted_at IS NOT NULL AND email IS NOT NULL`);
    await q.query(`CREATE INDEX users_deleted_username_idx ON users (lower(username), deleted_at DESC) WHERE deleted_at IS NOT NULL AND username IS NOT NULL`);
    await q.query(`CREATE INDEX users_deleted_phone_idx ON users (phone, deleted_at DESC) WHERE deleted_at IS NOT NULL AND phone IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX users_deleted_phone_idx`);
    await q.query(`DROP INDEX users_deleted_username_idx`);
    await q.query(`DROP INDEX users_deleted_email_idx`);
    await q.query(`DELETE FROM otp_codes WHERE purpose = 'mfa'`);
    await q.query(`ALTER TABLE otp_codes DROP CONSTRAINT otp_codes_purpose_check`);
    await q.query(`ALTER TABLE otp_codes ADD CONSTRAINT otp_codes_purpose_check CHECK (purpose IN ('login', 'verify_contact', 'password_reset'))`);
    await q.query(`DROP TABLE mfa_code_factors`);
  }
}
