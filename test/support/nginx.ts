// A real nginx (Debian package `nginx`, installed by .ci/run when missing) for tests of what a
// deployment puts in front of the service: started on a free port with a generated
// configuration, in the foreground as one process (no daemon, no master), its files in a temp
// directory; stopped and removed after the suite.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./ports.js";

export const NGINX = "/usr/sbin/nginx";

export interface Nginx {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** What nginx wrote to its error log so far (for failure messages). */
  errorLog(): string;
  stop(): Promise<void>;
}

/**
 * Starts nginx with `http(port)` as the body of its `http {}` block, `port` the one it waits for
 * (`options.port`, else a free one). `npm run cluster` (deploy/cluster/run.ts) starts it too.
 */
export async function startNginx(http: (port: number) => string, options: { port?: number } = {}): Promise<Nginx> {
  const dir = mkdtempSync(path.join(tmpdir(), "identity-nginx-"));
  const port = options.port ?? (await freePort());
  const errorLogFile = path.join(dir, "error.log");
  const temp = (name: string) => path.join(dir, name);
  writeFileSync(
    path.join(dir, "nginx.conf"),
    `daemon off;
master_process off;
worker_processes 1;
pid ${temp("nginx.pid")};
error_log ${errorLogFile} info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${temp("client_body")};
  proxy_temp_path ${temp("proxy")};
  fastcgi_temp_path ${temp("fastcgi")};
  uwsgi_temp_path ${temp("uwsgi")};
  scgi_temp_path ${temp("scgi")};
${http(port)}
}
`,
  );
  const child: ChildProcess = spawn(NGINX, ["-p", dir, "-c", path.join(dir, "nginx.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const errorLog = () => {
    try {
      return `${stderr}${readFileSync(errorLogFile, "utf8")}`;
    } catch {
      return stderr;
    }
  };
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}):\n${errorLog()}`);
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}:\n${errorLog()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    errorLog,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGQUIT");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
