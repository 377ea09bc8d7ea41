// The signed-in caller's account, which must still be live (store: users.findLive).
import type { Store, UserRow } from "../../store/index.js";
import { AppError } from "../errors.js";

/** The live account `userId`; ACCESS_TOKEN_INVALID when it is disabled, deleted or gone. */
export async function requireLiveUser(db: Pick<Store, "direct" | "users">, userId: string): Promise<UserRow> {
  const user = await db.users.findLive(db.direct, userId);
  if (!user) throw new AppError("ACCESS_TOKEN_INVALID", `account ${userId} is not active`);
  return user;
}
