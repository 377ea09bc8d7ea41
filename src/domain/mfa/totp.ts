// The TOTP credential: a 160-bit secret sealed with the key-encryption key, 30-second steps,
// +/-1 step, and every code accepted once (the step it matched must be newer than the last).
import { generateSecret, generateURI, verifySync } from "otplib";
import QRCode from "qrcode";
import type { Store, Tx } from "../../store/index.js";
import type { Clock } from "../clock.js";
import { sealWith, unsealWith, type Keyring } from "../crypto.js";

export const TOTP_PERIOD_SEC = 30;

export interface Totp {
  /** A new secret for `userId`, stored unconfirmed (replacing any earlier one), with its otpauth:// URL and QR code. */
  enrol(userId: string, issuer: string, label: string): Promise<{ secret: string; otpauthUrl: string; qrCodeDataUrl: string }>;
  /** Accepts `code` once; a pending (unconfirmed) credential only when `requireConfirmed` is false. */
  accept(tx: Tx, userId: string, code: string, requireConfirmed: boolean): Promise<boolean>;
}

export function createTotp(db: Pick<Store, "direct" | "totp">, clock: Clock, kek: Keyring): Totp {
  const sealSecret = (userId: string, secret: string) => sealWith(kek, Buffer.from(secret), `totp:${userId}`);
  const unsealSecret = (userId: string, sealed: Buffer) => unsealWith(kek, sealed, `totp:${userId}`).plaintext.toString();

  return {
    async enrol(userId, issuer, label) {
      const secret = generateSecret({ length: 20 });
      const otpauthUrl = generateURI({ issuer, label, secret, period: TOTP_PERIOD_SEC });
      await db.totp.upsertPending(db.direct, userId, sealSecret(userId, secret));
      return { secret, otpauthUrl, qrCodeDataUrl: await QRCode.toDataURL(otpauthUrl, { errorCorrectionLevel: "M", margin: 2, width: 240 }) };
    },

    async accept(tx, userId, code, requireConfirmed) {
      const credential = await db.totp.find(tx, userId);
      if (!credential || (requireConfirmed && credential.confirmedAt === null)) return false;
      const result = verifySync({
        secret: unsealSecret(userId, credential.secretSealed),
        token: code,
        epoch: Math.floor(clock.now().getTime() / 1000),
        epochTolerance: TOTP_PERIOD_SEC,
        period: TOTP_PERIOD_SEC,
      });
      if (!result.valid || !("timeStep" in result)) return false;
      // Atomic (store: totp.advanceStep): of two requests with the same code, only one advances the step.
      return db.totp.advanceStep(tx, userId, result.timeStep);
    },
  };
}
