// TLS for both listeners from PEM files that may change while the service runs (a renewed
// certificate, a rotated client CA), on grpc-js's own mechanism: a FileWatcherCertificateProvider
// re-reads the files every TLS_RELOAD_SECONDS and certificate-provider credentials call
// setSecureContext on the gRPC listener; the gateway follows the same readings on its HTTPS
// server. Connections already open keep the certificate they were made with.
//
// Between the file watcher and the listeners sits a check: grpc-js, given a reading that does
// not work (a key that no longer matches because only the certificate was rewritten so far, a
// file read half-written or missing for a moment), drops every new connection until the next
// good reading. Here such a reading is logged and skipped, and the listeners keep the last good
// certificate. Only the first reading must be good: it is checked before either port listens.
import { X509Certificate, createHash } from "node:crypto";
import { createSecureContext } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { TlsConfig } from "../config.js";
import type { Logger } from "../logger.js";

type CaUpdate = grpc.experimental.CaCertificateUpdate;
type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;

/** The certificate and key both listeners present, as last read. */
export interface ServerIdentity {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TlsFiles {
  /** Credentials for grpc.Server.bindAsync: TLS, and client certificates when a CA is configured. */
  readonly grpcCredentials: grpc.ServerCredentials;
  /**
   * The first good reading of the files; rejects, naming the variable, when it is not good (a
   * key that does not match its certificate, a file that is not PEM or cannot be read).
   */
  loaded(): Promise<ServerIdentity>;
  /** Called with every later good reading whose certificate or key differs. */
  onChange(listener: (identity: ServerIdentity) => void): void;
  stop(): void;
}

/** What a log line says about a certificate: its subject, serial and SHA-256 fingerprint. */
export function describeCertificate(pem: Buffer): { subject: string; serial: string; sha256: string } {
  const cert = new X509Certificate(pem);
  return { subject: cert.subject.replace(/\n/g, ", "), serial: cert.serialNumber, sha256: cert.fingerprint256 };
}

const digest = (...parts: Buffer[]): string => parts.reduce((hash, part) => hash.update(part), createHash("sha256")).digest("hex");

/** Why `update` cannot serve, or undefined when it can. */
function identityProblem(update: IdentityUpdate | null, config: TlsConfig): string | undefined {
  if (update === null) return `TLS_CERT_FILE ${config.certFile} or TLS_KEY_FILE ${config.keyFile} could not be read`;
  try {
    new X509Certificate(update.certificate);
    createSecureContext({ cert: update.certificate, key: update.privateKey });
    return undefined;
  } catch (error) {
    return `TLS_CERT_FILE/TLS_KEY_FILE: ${(error as Error).message}`;
  }
}

/** node accepts any bytes as `ca` (and then trusts nothing): each PEM block must parse. */
function caProblem(update: CaUpdate | null, config: TlsConfig): string | undefined {
  if (update === null) return `TLS_CLIENT_CA_FILE ${config.clientCaFile} could not be read`;
  const blocks = update.caCertificate.toString("latin1").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error("no PEM certificate found");
    for (const block of blocks) new X509Certificate(block);
    return undefined;
  } catch (error) {
    return `TLS_CLIENT_CA_FILE: ${(error as Error).message}`;
  }
}

/** Passes on the good readings of one kind, each once, and tells a late listener the last one. */
class GoodReadings<T> {
  readonly listeners = new Set<(update: T) => void>();
  latest: { update: T; digest: string } | undefined;
  add(listener: (update: T) => void): void {
    this.listeners.add(listener);
    if (this.latest) process.nextTick(listener, this.latest.update);
  }
  /** Whether `update` was new. */
  publish(update: T, hash: string): boolean {
    if (this.latest?.digest === hash) return false;
    this.latest = { update, digest: hash };
    for (const listener of this.listeners) listener(update);
    return true;
  }
}

export function createTlsFiles(config: TlsConfig, logger?: Logger): TlsFiles {
  const files = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: config.certFile,
    privateKeyFile: config.keyFile,
    caCertificateFile: config.clientCaFile,
    refreshIntervalMs: config.reloadIntervalMs,
  });
  const identities = new GoodReadings<IdentityUpdate>();
  const cas = new GoodReadings<CaUpdate>();
  // What grpc-js listens to: the good readings only.
  const checked: grpc.experimental.CertificateProvider = {
    addIdentityCertificateListener: (l) => identities.add(l),
    removeIdentityCertificateListener: (l) => identities.listeners.delete(l),
    addCaCertificateListener: (l) => cas.add(l),
    removeCaCertificateListener: (l) => cas.listeners.delete(l),
  };
  // Identity first, then the CA provider (grpc-js names the parameters the other way round).
  const grpcCredentials = grpc.experimental.createCertificateProviderServerCredentials(
    checked,
    config.clientCaFile === undefined ? null : checked,
    config.clientAuth === "require",
  );

  let first: Promise<ServerIdentity> | undefined;
  let onIdentity: ((update: IdentityUpdate | null) => void) | undefined;
  let onCa: ((update: CaUpdate | null) => void) | undefined;
  const toIdentity = (update: IdentityUpdate): ServerIdentity => ({ cert: update.certificate, key: update.privateKey });

  const loaded = (): Promise<ServerIdentity> =>
    (first ??= new Promise<ServerIdentity>((resolve, reject) => {
      const settleFirst = () => {
        if (identities.latest && (config.clientCaFile === undefined || cas.latest)) resolve(toIdentity(identities.latest.update));
      };
      onIdentity = (update) => {
        const problem = identityProblem(update, config);
        if (problem !== undefined || update === null) {
          if (!identities.latest) reject(new Error(problem));
          else logger?.warn({ problem }, "tls files not reloaded: keeping the certificate in use");
          return;
        }
        const initial = !identities.latest;
        if (identities.publish(update, digest(update.certificate, update.privateKey)) && !initial) {
          logger?.info({ certificate: describeCertificate(update.certificate) }, "tls certificate reloaded");
        }
        settleFirst();
      };
      onCa = (update) => {
        const problem = caProblem(update, config);
        if (problem !== undefined || update === null) {
          if (!cas.latest) reject(new Error(problem));
          else logger?.warn({ problem }, "tls files not reloaded: keeping the client CA in use");
          return;
        }
        const initial = !cas.latest;
        if (cas.publish(update, digest(update.caCertificate)) && !initial) logger?.info("tls client CA reloaded");
        settleFirst();
      };
      files.addIdentityCertificateListener(onIdentity);
      if (config.clientCaFile !== undefined) files.addCaCertificateListener(onCa);
    }));

  return {
    grpcCredentials,
    loaded,
    onChange: (listener) => identities.listeners.add((update) => listener(toIdentity(update))),
    stop() {
      if (onIdentity) files.removeIdentityCertificateListener(onIdentity);
      if (onCa) files.removeCaCertificateListener(onCa);
    },
  };
}
