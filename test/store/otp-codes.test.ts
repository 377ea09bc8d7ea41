// The otp-codes store contract (contracts/otp-codes.ts) against the real PostgreSQL, migrated like production.
import { otpCodeStoreContract } from "./contracts/otp-codes.js";
import { postgresStore, useStore } from "./support.js";

otpCodeStoreContract(useStore(postgresStore));
