// The revocation-feed store contract (contracts/revocation-feed.ts) against the real PostgreSQL, migrated like production.
import { revocationFeedContract } from "./contracts/revocation-feed.js";
import { postgresStore, useStore } from "./support.js";

revocationFeedContract(useStore(postgresStore));
