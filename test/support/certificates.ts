// A throwaway PKI made at run time with Debian's openssl: a CA, server certificates for
// 127.0.0.1/localhost and client certificates with a SPIFFE ID, as PEM files in a temp dir.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const OPENSSL = "/usr/bin/openssl";

export interface IssuedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TestCa {
  readonly name: string;
  readonly certFile: string;
  readonly cert: Buffer;
}

export interface TestPki {
  readonly dir: string;
  /** A self-signed CA (P-256) named `name`. */
  ca(name: string): TestCa;
  /** A server certificate for 127.0.0.1 and localhost, signed by `ca`. */
  server(ca: TestCa, cn: string): IssuedCertificate;
  /** A client certificate with CN `cn` and URI SAN `uri`, signed by `ca`. */
  client(ca: TestCa, cn: string, uri: string): IssuedCertificate;
  /** Writes `content` to `file` the way a deployment should: aside, then rename. */
  replace(file: string, content: Buffer): void;
  remove(): void;
}

export function createTestPki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), "identity-tls-"));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

  function issue(ca: TestCa, cn: string, extensions: string): IssuedCertificate {
    const base = cn.replace(/[^a-z0-9-]/gi, "_");
    writeFileSync(file(`${base}.ext`), extensions);
    openssl("req", "-new", ...newKey, "-keyout", file(`${base}.key`), "-out", file(`${base}.csr`), "-subj", `/O=Identity tests/CN=${cn}`);
    openssl("x509", "-req", "-in", file(`${base}.csr`), "-CA", ca.certFile, "-CAkey", file(`${ca.name}.key`), "-set_serial", `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`, "-days", "2", "-extfile", file(`${base}.ext`), "-out", file(`${base}.crt`));
    return { certFile: file(`${base}.crt`), keyFile: file(`${base}.key`), cert: readFileSync(file(`${base}.crt`)), key: readFileSync(file(`${base}.key`)) };
  }

  return {
    dir,
    ca(name) {
      openssl("req", "-x509", ...newKey, "-keyout", file(`${name}.key`), "-out", file(`${name}.crt`), "-days", "2", "-subj", `/CN=${name}`,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
      return { name, certFile: file(`${name}.crt`), cert: readFileSync(file(`${name}.crt`)) };
    },
    server: (ca, cn) => issue(ca, cn, "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
    client: (ca, cn, uri) => issue(ca, cn, `subjectAltName=URI:${uri}\nextendedKeyUsage=clientAuth\n`),
    replace(target, content) {
      writeFileSync(`${target}.new`, content);
      renameSync(`${target}.new`, target);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
