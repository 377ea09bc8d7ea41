// A TCP port on 127.0.0.1 that was free a moment ago, for servers that cannot take port 0
// (embedded PostgreSQL, a service process whose ports are passed in its environment).
import { createServer } from "node:net";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
