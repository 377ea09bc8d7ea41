// Every migration, in order. TypeORM runs the ones the database has not seen yet.
import { Initial1763769600000 } from "./1763769600000-Initial.js";
import { RevocationNotify1763770000000 } from "./1763770000000-RevocationNotify.js";

export const migrations = [Initial1763769600000, RevocationNotify1763770000000];
