// TLS for both listeners from PEM files that may change while the service runs (a renewed
// certificate, a rotated client CA). grpc-js's own mechanism reads them: a
// FileWatcherCertificateProvider re-reads the files every TLS_RELOAD_SECONDS and its
// certificate-provider credentials call setSecureContext on the gRPC listener; the gateway
// listens to the same provider and does the same on its HTTPS server. Connections already open
// keep the certificate they were made with; new ones get the new one.
//
// Replace the files atomically (write aside, then rename; Kubernetes swaps a symlink): a file
// read half-written is refused by setSecureContext and grpc-js drops new connections until the
// next read.
import { X509Certificate, createHash } from "node:crypto";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { TlsConfig } from "../config.js";

/** The certificate and key both listeners present, as last read. */
export interface ServerIdentity {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TlsFiles {
  /** Credentials for grpc.Server.bindAsync: TLS, and client certificates when a CA is configured. */
  readonly grpcCredentials: grpc.ServerCredentials;
  /**
   * The first reading of the files, checked by building a secure context (a key that does not
   * match its certificate, a file that is not PEM, stops the start here with the reason).
   */
  loaded(): Promise<ServerIdentity>;
  /** Called with every later reading that differs from the one before (not with the first). */
  onChange(listener: (identity: ServerIdentity) => void): void;
  stop(): void;
}

/** What a log line says about a certificate: its subject, serial and SHA-256 fingerprint. */
export function describeCertificate(pem: Buffer): { subject: string; serial: string; sha256: string } {
  const cert = new X509Certificate(pem);
  return { subject: cert.subject.replace(/\n/g, ", "), serial: cert.serialNumber, sha256: cert.fingerprint256 };
}

export function createTlsFiles(config: TlsConfig): TlsFiles {
  const provider = new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: config.certFile,
    privateKeyFile: config.keyFile,
    caCertificateFile: config.clientCaFile,
    refreshIntervalMs: config.reloadIntervalMs,
  });
  // Identity first, then the CA provider (grpc-js names the parameters the other way round).
  const grpcCredentials = grpc.experimental.createCertificateProviderServerCredentials(
    provider,
    config.clientCaFile === undefined ? null : provider,
    config.clientAuth === "require",
  );
  const listeners = new Set<(identity: ServerIdentity) => void>();
  let current: { identity: ServerIdentity; digest: string } | undefined;
  let first: Promise<ServerIdentity> | undefined;
  let onUpdate: grpc.experimental.IdentityCertificateUpdateListener | undefined;

  const loaded = (): Promise<ServerIdentity> =>
    (first ??= new Promise<ServerIdentity>((resolve, reject) => {
      onUpdate = (update) => {
        if (update === null) {
          if (!current) reject(new Error(`TLS_CERT_FILE ${config.certFile} or TLS_KEY_FILE ${config.keyFile} could not be read`));
          return;
        }
        const identity = { cert: update.certificate, key: update.privateKey };
        const digest = createHash("sha256").update(identity.cert).update(identity.key).digest("hex");
        if (current?.digest === digest) return;
        const firstReading = current === undefined;
        try {
          createSecureContext(identity satisfies SecureContextOptions);
          if (firstReading) new X509Certificate(identity.cert);
        } catch (error) {
          if (firstReading) reject(new Error(`TLS_CERT_FILE/TLS_KEY_FILE: ${(error as Error).message}`));
          return;
        }
        current = { identity, digest };
        if (firstReading) resolve(identity);
        else for (const listener of listeners) listener(identity);
      };
      // Also what keeps the provider reading while the gateway runs without the gRPC listener.
      provider.addIdentityCertificateListener(onUpdate);
    }));

  return {
    grpcCredentials,
    loaded,
    onChange: (listener) => listeners.add(listener),
    stop() {
      if (onUpdate) provider.removeIdentityCertificateListener(onUpdate);
      listeners.clear();
    },
  };
}
