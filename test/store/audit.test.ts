// The audit store contract (contracts/keys-audit.ts) against the real PostgreSQL, migrated like production.
import { auditEventStoreContract } from "./contracts/keys-audit.js";
import { postgresStore, useStore } from "./support.js";

auditEventStoreContract(useStore(postgresStore));
