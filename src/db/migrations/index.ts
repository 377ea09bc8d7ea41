// Every migration, in order. TypeORM runs the ones the database has not seen yet.
import { Initial1763769600000 } from "./1763769600000-Initial.js";

export const migrations = [Initial1763769600000];
