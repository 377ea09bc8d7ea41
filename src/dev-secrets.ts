// Development secrets, generated on first start into DATA_DIR and kept there (mode 0600).
// Production mode never reaches this: config refuses to start without KEY_ENCRYPTION_KEY.
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface DevSecrets {
  readonly keyEncryptionKey: string;
  readonly postgresPassword: string;
}

export function loadDevSecrets(dataDir: string): DevSecrets {
  const file = path.join(dataDir, "dev-secrets.json");
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as DevSecrets;
  // The directory stays traversable: embedded PostgreSQL runs as its own user beneath it.
  mkdirSync(dataDir, { recursive: true });
  chmodSync(dataDir, 0o755);
  const secrets: DevSecrets = {
    keyEncryptionKey: randomBytes(32).toString("base64"),
    postgresPassword: randomBytes(18).toString("base64url"),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
