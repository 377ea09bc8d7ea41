// The rate-limits store contract (contracts/rate-limits.ts) against the real PostgreSQL, migrated like production.
import { rateLimitStoreContract } from "./contracts/rate-limits.js";
import { postgresStore, useStore } from "./support.js";

rateLimitStoreContract(useStore(postgresStore));
