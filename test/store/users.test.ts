// The users store contract (contracts/users.ts) against the real PostgreSQL, migrated like production.
import { userStoreContract } from "./contracts/users.js";
import { postgresStore, useStore } from "./support.js";

userStoreContract(useStore(postgresStore));
