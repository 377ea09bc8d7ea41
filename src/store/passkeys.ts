// Passkeys (WebAuthn credentials) and the challenges of their ceremonies. The two security state
// changes are one conditional statement each: consuming a challenge (single use, unexpired, bound
// to what started it) and advancing a passkey's signature counter (never backwards).
import { removeSignInMethod, type RemovalOutcome } from "./sign-in-methods.js";
import { affected, rows, type Tx } from "./tx.js";
import { live } from "./users.js";

export type PasskeyDeviceType = "singleDevice" | "multiDevice";

export interface PasskeyRow {
  readonly id: string;
  readonly userId: string;
  /** base64url, as the authenticator reports it. */
  readonly credentialId: string;
  /** The COSE public key. */
  readonly publicKey: Buffer;
  readonly signCount: number;
  readonly transports: string[];
  readonly deviceType: PasskeyDeviceType;
  readonly backedUp: boolean;
  readonly name: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
}

export interface NewPasskey {
  readonly userId: string;
  readonly credentialId: string;
  readonly publicKey: Buffer;
  readonly signCount: number;
  readonly transports: readonly string[];
  readonly deviceType: PasskeyDeviceType;
  readonly backedUp: boolean;
  readonly name: string;
}

export interface PasskeyStore {
  /**
   * Stores a passkey of the live account `userId`; undefined when the account is not live.
   * UniqueViolationError when the credential is registered already (to any account).
   */
  insert(tx: Tx, passkey: NewPasskey, now: Date): Promise<PasskeyRow | undefined>;
  /** The passkey with this credential id, whoever's. */
  findByCredentialId(tx: Tx, credentialId: string): Promise<PasskeyRow | undefined>;
  /** The account's passkeys, newest first. */
  listByUser(tx: Tx, userId: string): Promise<PasskeyRow[]>;
  /** Renames the account's passkey `id`; undefined when it has none by that id. */
  rename(tx: Tx, userId: string, id: string, name: string): Promise<PasskeyRow | undefined>;
  /** Removes the account's passkey `id`; false when it has none by that id. */
  /**
   * Removes the account's passkey `id`, unless it is the account's last way to sign in (no
   * password, no other passkey, no provider identity): "last_sign_in_method", changing nothing.
   */
  remove(tx: Tx, userId: string, id: string): Promise<RemovalOutcome>;
  /**
   * Records a sign-in whose authenticator reported `signCount`: false, changing nothing, when the
   * counter did not move forward (a cloned authenticator, WebAuthn §6.1.1), unless both are 0
   * (an authenticator without a counter, as synced passkeys are).
   */
  recordUse(tx: Tx, id: string, signCount: number, backedUp: boolean, at: Date): Promise<boolean>;
}

export type ChallengePurpose = "register" | "login";

export interface NewChallenge {
  readonly challenge: string;
  readonly purpose: ChallengePurpose;
  /** A registration's account and session; null for a sign-in. */
  readonly userId: string | null;
  readonly sessionId: string | null;
  readonly expiresAt: Date;
}

export interface WebAuthnChallengeStore {
  /** Stores a challenge and answers its id; expired challenges are swept on the way. */
  insert(tx: Tx, challenge: NewChallenge, now: Date): Promise<string>;
  /**
   * Consumes the challenge `id` of `purpose` once: its value, or undefined when it is unknown,
   * used, expired, or bound to another account or session.
   */
  consume(tx: Tx, id: string, purpose: ChallengePurpose, binding: { userId: string | null; sessionId: string | null }, now: Date): Promise<string | undefined>;
}

interface PasskeyRecord {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: Buffer;
  sign_count: string;
  transports: string[];
  device_type: PasskeyDeviceType;
  backed_up: boolean;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
}

const COLUMNS = "id, user_id, credential_id, public_key, sign_count, transports, device_type, backed_up, name, created_at, last_used_at";

function toRow(r: PasskeyRecord): PasskeyRow {
  return {
    id: r.id,
    userId: r.user_id,
    credentialId: r.credential_id,
    publicKey: r.public_key,
    signCount: Number(r.sign_count),
    transports: r.transports,
    deviceType: r.device_type,
    backedUp: r.backed_up,
    name: r.name,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
  };
}

export const passkeyStore: PasskeyStore = {
  async insert(tx, p, now) {
    // Conditional on the account being live, in the same statement as the insert.
    const [row] = await rows<PasskeyRecord>(tx,
      `INSERT INTO passkeys (user_id, credential_id, public_key, sign_count, transports, device_type, backed_up, name, created_at)
       SELECT u.id, $2, $3, $4, $5, $6, $7, $8, $9 FROM users u WHERE u.id = $1 AND ${live("u")}
       RETURNING ${COLUMNS}`,
      [p.userId, p.credentialId, p.publicKey, p.signCount, [...p.transports], p.deviceType, p.backedUp, p.name, now],
    );
    return row && toRow(row);
  },

  async findByCredentialId(tx, credentialId) {
    const [row] = await rows<PasskeyRecord>(tx, `SELECT ${COLUMNS} FROM passkeys WHERE credential_id = $1`, [credentialId]);
    return row && toRow(row);
  },

  async listByUser(tx, userId) {
    const found = await rows<PasskeyRecord>(tx, `SELECT ${COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, [userId]);
    return found.map(toRow);
  },

  async rename(tx, userId, id, name) {
    const [row] = await rows<PasskeyRecord>(tx, `UPDATE passkeys SET name = $3 WHERE id = $2 AND user_id = $1 RETURNING ${COLUMNS}`, [userId, id, name]);
    return row && toRow(row);
  },

  remove(tx, userId, id) {
    // The last-sign-in-method rule (sign-in-methods.ts), shared with UnlinkIdentity.
    return removeSignInMethod(tx, userId, "passkey", [id]);
  },

  async recordUse(tx, id, signCount, backedUp, at) {
    // One statement, conditional on the stored counter: of two sign-ins reporting the same counter
    // (a clone racing the original) at most one advances it; a counter that went back changes
    // nothing and the caller refuses the sign-in. Both 0 means the authenticator keeps no counter.
    const used = await affected(tx,
      `UPDATE passkeys SET sign_count = $2, backed_up = $3, last_used_at = $4
       WHERE id = $1 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))`,
      [id, signCount, backedUp, at],
    );
    return used === 1;
  },
};

export const webauthnChallengeStore: WebAuthnChallengeStore = {
  async insert(tx, c, now) {
    await affected(tx, `DELETE FROM webauthn_challenges WHERE expires_at <= $1`, [now]);
    const [row] = await rows<{ id: string }>(tx,
      `INSERT INTO webauthn_challenges (challenge, purpose, user_id, session_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
      [c.challenge, c.purpose, c.userId, c.sessionId, c.expiresAt, now],
    );
    return row!.id;
  },

  async consume(tx, id, purpose, binding, now) {
    // One statement: deleted only while unexpired, of this purpose and bound to this account and
    // session (a registration's; a sign-in's binds none), so of two finishes presenting the same
    // challenge exactly one gets its value; the other (waiting on the row lock) finds it gone.
    const [row] = await rows<{ challenge: string }>(tx,
      `DELETE FROM webauthn_challenges
       WHERE id = $1 AND purpose = $2 AND expires_at > $5
         AND user_id IS NOT DISTINCT FROM $3::uuid AND session_id IS NOT DISTINCT FROM $4::uuid
       RETURNING challenge`,
      [id, purpose, binding.userId, binding.sessionId, now],
    );
    return row?.challenge;
  },
};
