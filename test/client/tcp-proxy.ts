// A TCP proxy in front of the identity service's gRPC port, so a test can take the revocation
// stream down for real: `refuse` destroys every connection and refuses new ones, `freeze` keeps
// the connections but forwards nothing (a silent stream, for the heartbeat watchdog), `pass`
// forwards again.
import { connect, createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export type ProxyMode = "pass" | "refuse" | "freeze";

export interface TcpProxy {
  readonly address: string;
  mode(mode: ProxyMode): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  let current: ProxyMode = "pass";
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    if (current === "refuse") {
      client.destroy();
      return;
    }
    const upstream = connect(port, host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    if (current === "freeze") {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    mode(mode) {
      current = mode;
      for (const [client, upstream] of pairs) {
        if (mode === "refuse") {
          client.destroy();
          upstream.destroy();
        } else if (mode === "freeze") {
          client.unpipe(upstream);
          upstream.unpipe(client);
          client.pause();
          upstream.pause();
        } else {
          client.pipe(upstream);
          upstream.pipe(client);
        }
      }
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
