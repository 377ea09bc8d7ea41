// An Express (4 or 5) middleware, typed structurally (Express is not imported): verifies the
// bearer token and sets `req.principal` and `res.locals.principal`, or answers the refusal.
// Per route: `app.get("/admin", expressMiddleware(verifier, { requireRole: "admin" }), handler)`.
import type { Policy, Principal } from "../types.js";
import type { TokenVerifier } from "../verifier.js";
import { bearerToken, challenge, httpStatus, refusalBody } from "./http.js";

interface Request {
  readonly headers: { readonly authorization?: string | undefined };
  principal?: Principal;
}
interface Response {
  statusCode: number;
  locals?: Record<string, unknown>;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

export function expressMiddleware(verifier: TokenVerifier, policy?: Policy): (req: Request, res: Response, next: (error?: unknown) => void) => void {
  return (req, res, next) => {
    verifier.verify(bearerToken(req.headers.authorization), policy).then((result) => {
      if (result.ok) {
        req.principal = result.principal;
        if (res.locals) res.locals.principal = result.principal;
        next();
        return;
      }
      res.statusCode = httpStatus(result);
      const value = challenge(result);
      if (value) res.setHeader("WWW-Authenticate", value);
      res.setHeader("Content-Type", "application/json");
      res.setHeader("Cache-Control", "no-store");
      res.end(refusalBody(result));
    }, next);
  };
}
