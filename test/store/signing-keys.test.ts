// The signing-keys store contract (contracts/keys-audit.ts) against the real PostgreSQL, migrated like production.
import { signingKeyStoreContract } from "./contracts/keys-audit.js";
import { postgresStore, useStore } from "./support.js";

signingKeyStoreContract(useStore(postgresStore));
