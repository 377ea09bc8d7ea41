import { EntitySchema } from "typeorm";

/** An Ed25519 key pair; the private half is sealed with the key-encryption key. */
export interface SigningKeyRow {
  kid: string;
  alg: string;
  publicJwk: Record<string, string>;
  privateKeySealed: Buffer;
  createdAt: Date;
  /** Signs from this instant (published in the JWKS before it). */
  activatesAt: Date;
  /** Stops signing at this instant; still verifies until expiresAt. */
  retiresAt: Date | null;
  /** Leaves the JWKS at this instant. */
  expiresAt: Date | null;
}

export const SigningKeyEntity = new EntitySchema<SigningKeyRow>({
  name: "SigningKey",
  tableName: "signing_keys",
  columns: {
    kid: { type: "text", primary: true },
    alg: { type: "text" },
    publicJwk: { name: "public_jwk", type: "jsonb" },
    privateKeySealed: { name: "private_key_sealed", type: "bytea" },
    createdAt: { name: "created_at", type: "timestamptz", createDate: true },
    activatesAt: { name: "activates_at", type: "timestamptz" },
    retiresAt: { name: "retires_at", type: "timestamptz", nullable: true },
    expiresAt: { name: "expires_at", type: "timestamptz", nullable: true },
  },
});
