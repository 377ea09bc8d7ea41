// Refresh tokens of browser calls: page script must never see one, so for a call the web gateway
// marks as a browser call (CallInfo.browser) the token leaves only in an HttpOnly cookie and
// comes back only from it. Every other caller gets and sends it in messages, as the proto says.
// Handlers set the cookie through ctx.responseHeader, which both gateway protocols carry.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { TokenPairSchema } from "../../gen/identity/v1/common_pb.js";
import type { TokenPair } from "../domain/sessions/session-tokens.js";
import { callInfo } from "./call.js";
import { tokensToProto } from "./mappers.js";

/** The token pair for the response: a browser call gets the refresh token as a cookie instead. */
export function deliverTokens(ctx: HandlerContext, tokens: TokenPair): MessageInitShape<typeof TokenPairSchema> {
  const message = tokensToProto(tokens);
  const browser = callInfo(ctx).browser;
  if (!browser) return message;
  ctx.responseHeader.append("set-cookie", browser.storeCookie(tokens.refreshToken, tokens.refreshTokenExpiresAt));
  return { ...message, refreshToken: "" };
}

/** The refresh token of a request: the message's, or for a browser call leaving it empty, the cookie's. */
export function presentedRefreshToken(ctx: HandlerContext, fromMessage: string): string {
  if (fromMessage !== "") return fromMessage;
  return callInfo(ctx).browser?.refreshToken ?? "";
}

/** Deletes the refresh-token cookie of a browser call (a no-op for other callers). */
export function clearRefreshCookie(ctx: HandlerContext): void {
  const browser = callInfo(ctx).browser;
  if (browser) ctx.responseHeader.append("set-cookie", browser.clearCookie());
}
