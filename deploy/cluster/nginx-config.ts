// The nginx configuration in front of several instances on one PostgreSQL, as `npm run cluster`
// runs it and test/ops/cluster.test.ts tests it: the body of nginx's `http {}` block (the test's
// and the script's nginx helper supplies the rest: pid, temp paths, logs).
//
// Two listeners, because the two ports speak differently:
// - gRPC: HTTP/2 cleartext (prior knowledge, what gRPC clients send) on the listener, `grpc_pass`
//   to every instance's GRPC_PORT. nginx terminates the client's HTTP/2 connection and balances
//   each call (stream) on its own, round robin, over keep-alive HTTP/2 connections of its own to
//   the instances: a client's long-lived connection is never pinned to one instance.
// - gateway: HTTP/1.1 (gRPC-web, Connect, the browser app), `proxy_pass` to every HTTP_PORT.
//
// An instance that refuses the connection (killed, restarting) is skipped and the call sent to the
// next one (`grpc_next_upstream error timeout`, nginx's default), then left out for `fail_timeout`.
// A call already sent to an instance that dies fails (502, which gRPC clients see as UNAVAILABLE):
// nginx sends no call twice: every RPC is a POST (a Login or SignUp may have been done), and
// grpc_pass streams the request body to the instance instead of buffering it, so not even a
// read-only VerifyToken can be resent (`grpc_next_upstream ... non_idempotent` was tried: nginx
// still answers 502). Retrying UNAVAILABLE on an idempotent RPC is the client's part.

export interface ClusterNginxOptions {
  /** Where nginx listens for gRPC (h2c) and for the gateway (HTTP/1.1). */
  readonly grpcListen: string;
  readonly httpListen: string;
  /** Every instance's gRPC and gateway address, host:port. */
  readonly grpcBackends: readonly string[];
  readonly httpBackends: readonly string[];
}

export function clusterNginxHttp({ grpcListen, httpListen, grpcBackends, httpBackends }: ClusterNginxOptions): string {
  const servers = (backends: readonly string[]) => backends.map((backend) => `    server ${backend} max_fails=1 fail_timeout=10s;`).join("\n");
  return `
  upstream identity_grpc {
${servers(grpcBackends)}
    keepalive 32;
    keepalive_requests 100000;
  }
  upstream identity_gateway {
${servers(httpBackends)}
    keepalive 32;
  }
  server {
    listen ${grpcListen} http2;
    # nginx sends GOAWAY after keepalive_requests calls on a client connection (default 1000).
    keepalive_requests 100000;
    # WatchRevocations streams stay open for hours; a stream quiet this long is ended.
    grpc_read_timeout 1h;
    grpc_send_timeout 1h;
    client_body_timeout 1h;
    # The instances trust nginx's address (TRUSTED_PROXIES): rate limits see the client's.
    grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    location / {
      grpc_pass grpc://identity_grpc;
    }
  }
  server {
    listen ${httpListen};
    location / {
      proxy_pass http://identity_gateway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
`;
}
