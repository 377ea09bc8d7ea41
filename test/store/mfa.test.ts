// The mfa store contract (contracts/mfa.ts) against the real PostgreSQL, migrated like production.
import { mfaStoreContract } from "./contracts/mfa.js";
import { postgresStore, useStore } from "./support.js";

mfaStoreContract(useStore(postgresStore));
