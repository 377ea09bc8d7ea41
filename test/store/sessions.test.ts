// The sessions store contract (contracts/sessions.ts) against the real PostgreSQL, migrated like production.
import { sessionStoreContract } from "./contracts/sessions.js";
import { postgresStore, useStore } from "./support.js";

sessionStoreContract(useStore(postgresStore));
