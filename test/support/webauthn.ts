// A software authenticator for the RPC-level passkey tests: ES256 keys from node:crypto, the
// authenticator data and a "none" attestation encoded in CBOR (by the helper @simplewebauthn/server
// exports), client data as a browser writes it. It holds discoverable credentials, verifies its
// user (the UV flag), and keeps a signature counter per credential; each answer can be bent to
// play a phishing page (origin), another relying party (RP ID) or a cloned key (counter).
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { isoCBOR } from "@simplewebauthn/server/helpers";
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "@simplewebauthn/server";

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest();

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

export interface SoftCredential {
  readonly id: Buffer;
  readonly rpId: string;
  readonly userHandle: string;
  readonly privateKey: KeyObject;
  /** The next assertion reports counter + 1 (unless the authenticator keeps no counter). */
  counter: number;
}

export interface CeremonyOverrides {
  /** The page's origin as the browser would write it into the client data. */
  readonly origin?: string;
  /** The RP ID whose hash the authenticator data carries. */
  readonly rpId?: string;
  /** The counter to report instead of the next one. */
  readonly counter?: number;
  /** Leave the UV flag unset (the person was not verified). */
  readonly unverified?: boolean;
  /** Sign with this credential instead of the first for the RP ID. */
  readonly credential?: SoftCredential;
}

export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = [];

  constructor(
    readonly origin: string,
    /** Synced passkeys (backup eligible and backed up) report no counter (always 0). */
    readonly options: { readonly synced?: boolean } = {},
  ) {}

  /** navigator.credentials.create(): a new discoverable ES256 credential, "none" attestation. */
  create(optionsJson: string, overrides: CeremonyOverrides = {}): RegistrationResponseJSON {
    const options = JSON.parse(optionsJson) as PublicKeyCredentialCreationOptionsJSON;
    const rpId = overrides.rpId ?? options.rp.id!;
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = publicKey.export({ format: "jwk" });
    // COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
    const coseKey = isoCBOR.encode(new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, "base64url")],
      [-3, Buffer.from(jwk.y!, "base64url")],
    ]));
    const id = randomBytes(16);
    const credentialIdLength = Buffer.alloc(2);
    credentialIdLength.writeUInt16BE(id.length);
    const authData = Buffer.concat([
      this.authDataHead(rpId, FLAG_AT, overrides, 0),
      Buffer.alloc(16), // AAGUID: none
      credentialIdLength,
      id,
      coseKey,
    ]);
    const attestationObject = isoCBOR.encode(new Map<string, string | Map<string, string> | Uint8Array>([
      ["fmt", "none"],
      ["attStmt", new Map<string, string>()],
      ["authData", authData],
    ]));
    const credential: SoftCredential = { id, rpId, userHandle: options.user.id, privateKey, counter: 0 };
    this.credentials.push(credential);
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: "public-key",
      response: {
        clientDataJSON: this.clientData("webauthn.create", options.challenge, overrides),
        attestationObject: b64url(attestationObject),
        transports: ["internal"],
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }

  /** navigator.credentials.get() for discoverable credentials: signs with the RP ID's first credential. */
  get(optionsJson: string, overrides: CeremonyOverrides = {}): AuthenticationResponseJSON {
    const options = JSON.parse(optionsJson) as PublicKeyCredentialRequestOptionsJSON;
    const credential = overrides.credential ?? this.credentials.find((c) => c.rpId === options.rpId);
    if (!credential) throw new Error(`no credential for ${options.rpId}`);
    if (!this.options.synced) credential.counter += 1;
    const counter = overrides.counter ?? (this.options.synced ? 0 : credential.counter);
    const authData = this.authDataHead(overrides.rpId ?? credential.rpId, 0, overrides, counter);
    const clientDataJSON = this.clientData("webauthn.get", options.challenge, overrides);
    const signature = sign("sha256", Buffer.concat([authData, sha256(Buffer.from(clientDataJSON, "base64url"))]), credential.privateKey);
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: "public-key",
      response: {
        clientDataJSON,
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        userHandle: credential.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }

  /** rpIdHash, flags, signCount: the 37 bytes every authenticator data starts with. */
  private authDataHead(rpId: string, extraFlags: number, overrides: CeremonyOverrides, counter: number): Buffer {
    let flags = FLAG_UP | extraFlags;
    if (!overrides.unverified) flags |= FLAG_UV;
    if (this.options.synced) flags |= FLAG_BE | FLAG_BS;
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), count]);
  }

  private clientData(type: string, challenge: string, overrides: CeremonyOverrides): string {
    return b64url(Buffer.from(JSON.stringify({ type, challenge, origin: overrides.origin ?? this.origin, crossOrigin: false })));
  }
}
