import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Issue 16: profile attributes on users (src/domain/accounts/profile.ts), codes sent to a new email
 * address or phone number (`change_contact`, src/domain/accounts/contact-change.ts), and the time a
 * session last proved its factors (sessions.auth_time, src/domain/accounts/reauthentication.ts).
 */
export class ProfileAndReauthentication1764310000000 implements MigrationInterface {
  name = "ProfileAndReauthentication1764310000000";

  async up(q: QueryRunner): Promise<void> {
    // All optional (REQUIRED_PROFILE_FIELDS is enforced by the service, so changing it needs no
    // migration); the checks only keep what the service validates from being bypassed.
    await q.query(`
      ALTER TABLE users
        ADD COLUMN given_name text NOT NULL DEFAULT '',
        ADD COLUMN family_name text NOT NULL DEFAULT '',
        ADD COLUMN country text CONSTRAINT users_country_check CHECK (country ~ '^[A-Z]{2}$'),
        ADD COLUMN birth_date date`);
    // The access tokens' auth_time: set at sign-in, renewed by Reauthenticate (created_at stays
    // the session's start). Existing sessions signed in when they were created.
    await q.query(`ALTER TABLE sessions ADD COLUMN auth_time timestamptz`);
    await q.query(`UPDATE sessions SET auth_time = created_at`);
    await q.query(`ALTER TABLE sessions ALTER COLUMN auth_time SET NOT NULL`);
    await q.query(`ALTER TABLE otp_codes DROP CONSTRAINT otp_codes_purpose_check`);
    // Runs after MfaCodeFactors, which added 'mfa': every purpose is listed.
    await q.query(`ALTER TABLE otp_codes ADD CONSTRAINT otp_codes_purpose_check CHECK (purpose IN ('login', 'verify_contact', 'password_reset', 'mfa', 'change_contact'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM otp_codes WHERE purpose = 'change_contact'`);
    await q.query(`ALTER TABLE otp_codes DROP CONSTRAINT otp_codes_purpose_check`);
    await q.query(`ALTER TABLE otp_codes ADD CONSTRAINT otp_codes_purpose_check CHECK (purpose IN ('login', 'verify_contact', 'password_reset', 'mfa'))`);
    await q.query(`ALTER TABLE sessions DROP COLUMN auth_time`);
    await q.query(`ALTER TABLE users DROP COLUMN given_name, DROP COLUMN family_name, DROP COLUMN country, DROP COLUMN birth_date`);
  }
}
