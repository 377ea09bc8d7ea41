// MAX_DEADLINE_MS bounds how long any call runs on the server, whatever the client asked for.
import { Code, ConnectError } from "@connectrpc/connect";
import { expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { setupService } from "../support/setup.js";

// One hash at a time and a 100 ms budget: a queue of sign-ups cannot all finish in time.
const t = setupService({ env: { MAX_DEADLINE_MS: "100", HASH_CONCURRENCY: "1" } });

it.each(["grpc", "connect"] as const)("cuts off calls past the server's deadline over %s, and keeps serving", async (name) => {
  const { auth, tokens } = t.clients(name);
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      auth.signUp({ username: `deadline-${name}-${i}`, password: "a long enough passphrase" }).then(
        () => "OK",
        (err: unknown) => {
          const error = ConnectError.from(err);
          return `${Code[error.code]}:${error.findDetails(ErrorInfoSchema)[0]?.reason ?? ""}`;
        },
      ),
    ),
  );
  expect(results).toContain("DeadlineExceeded:DEADLINE_EXCEEDED");
  expect(results.every((r) => r === "OK" || r === "DeadlineExceeded:DEADLINE_EXCEEDED")).toBe(true);
  // Still serving once the queue has drained.
  await new Promise((r) => setTimeout(r, 1_000));
  expect((await tokens.getJwks({})).keys).toHaveLength(1);
});
