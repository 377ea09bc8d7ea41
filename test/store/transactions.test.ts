// The transactions store contract (contracts/transactions.ts) against the real PostgreSQL, migrated like production.
import { transactionContract } from "./contracts/transactions.js";
import { postgresStore, useStore } from "./support.js";

transactionContract(useStore(postgresStore));
