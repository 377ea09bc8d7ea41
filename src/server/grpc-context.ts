// A HandlerContext for calls arriving through grpc-js. Everything a handler may not need
// (Headers objects, AbortController) is built on first use: VerifyToken touches none of it.
import { X509Certificate } from "node:crypto";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { callInfoKey, normalizeAddress, type CallInfo, type ClientCertificate } from "../services/call.js";
import type { ForwardingPolicy } from "../services/client-address.js";

/** `127.0.0.1:5000`, `[::1]:5000`, `ipv4:1.2.3.4:5` -> the address without the port. */
function peerHost(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, "");
  const bracketed = /^\[([^\]]+)\]/.exec(bare);
  if (bracketed) return bracketed[1]!;
  const colon = bare.lastIndexOf(":");
  return colon > 0 && bare.indexOf(":") === colon ? bare.slice(0, colon) : bare;
}

class GrpcCallInfo implements CallInfo {
  private peer: string | undefined;
  /** Response headers set through setResponseHeader, sent with the answer or the error. */
  responseMetadata: grpc.Metadata | undefined;
  constructor(
    private readonly call: grpc.ServerUnaryCall<unknown, unknown>,
    private readonly metadataCtor: typeof grpc.Metadata,
    readonly forwarding: ForwardingPolicy | undefined,
  ) {}
  header(name: string): string | undefined {
    const value = this.call.metadata.get(name)[0];
    return typeof value === "string" ? value : undefined;
  }
  get peerAddress(): string {
    return (this.peer ??= normalizeAddress(peerHost(this.call.getPeer())));
  }
  setResponseHeader(name: string, value: string): void {
    (this.responseMetadata ??= new this.metadataCtor()).set(name, value);
  }
  private certificate: ClientCertificate | null | undefined;
  clientCertificate(): ClientCertificate | undefined {
    if (this.certificate === undefined) this.certificate = readClientCertificate(this.call) ?? null;
    return this.certificate ?? undefined;
  }
}

/**
 * grpc-js hands out the peer certificate only when the TLS handshake verified it against the
 * configured CA (socket.authorized): with TLS_CLIENT_AUTH=optional an unverifiable certificate
 * reads as none.
 */
function readClientCertificate(call: grpc.ServerUnaryCall<unknown, unknown>): ClientCertificate | undefined {
  const peer = call.getAuthContext().sslPeerCertificate;
  const raw = peer?.raw;
  if (!raw) return undefined;
  // A service calls with the same certificate call after call: parse it once (the fingerprint is
  // the SHA-256 of the DER, which node computed for the handshake anyway).
  const known = peer.fingerprint256 ? parsedCertificates.get(peer.fingerprint256) : undefined;
  if (known) return known;
  const parsed = parseClientCertificate(raw);
  if (parsedCertificates.size >= MAX_PARSED_CERTIFICATES) parsedCertificates.clear();
  parsedCertificates.set(parsed.fingerprint256, parsed);
  return parsed;
}

const MAX_PARSED_CERTIFICATES = 1_000;
const parsedCertificates = new Map<string, ClientCertificate>();

function parseClientCertificate(raw: Buffer): ClientCertificate {
  const cert = new X509Certificate(raw);
  const names = (cert.subjectAltName ?? "").split(/,\s*/).filter((n) => n !== "");
  const valuesOf = (prefix: string) => names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
  // Frozen: one object serves every call made with this certificate.
  return Object.freeze({
    subject: cert.subject,
    uris: Object.freeze(valuesOf("URI:")),
    dnsNames: Object.freeze(valuesOf("DNS:")),
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
  });
}

export class GrpcHandlerContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  readonly values: ContextValues;
  private abort?: AbortController;
  private reqHeader?: Headers;
  private resHeader?: Headers;
  private resTrailer?: Headers;
  private readonly info: GrpcCallInfo;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    private readonly call: grpc.ServerUnaryCall<unknown, unknown>,
    private readonly metadataCtor: typeof grpc.Metadata,
    forwarding?: ForwardingPolicy,
  ) {
    this.info = new GrpcCallInfo(call, metadataCtor, forwarding);
    this.values = createContextValues().set(callInfoKey, this.info);
  }

  get url(): string {
    return `/${this.service.typeName}/${this.method.name}`;
  }

  get signal(): AbortSignal {
    if (!this.abort) {
      const abort = (this.abort = new AbortController());
      this.call.once("cancelled", () => abort.abort());
    }
    return this.abort.signal;
  }

  readonly timeoutMs = (): number | undefined => {
    const deadline = this.call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    return Number.isFinite(ms) ? Math.max(0, ms - Date.now()) : undefined;
  };

  get requestHeader(): Headers {
    if (!this.reqHeader) {
      this.reqHeader = new Headers();
      for (const [key, value] of Object.entries(this.call.metadata.getMap())) {
        if (typeof value === "string") this.reqHeader.append(key, value);
      }
    }
    return this.reqHeader;
  }

  get responseHeader(): Headers {
    return (this.resHeader ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.resTrailer ??= new Headers());
  }

  /** Headers and trailers the handler set, as grpc-js metadata (undefined when untouched). */
  takeResponseMetadata(): { header?: grpc.Metadata; trailer?: grpc.Metadata } {
    const toMetadata = (headers: Headers | undefined, base?: grpc.Metadata) => {
      if (!headers) return base;
      const md = base ?? new this.metadataCtor();
      headers.forEach((value, key) => md.add(key, value));
      return md;
    };
    return { header: toMetadata(this.resHeader, this.info.responseMetadata), trailer: toMetadata(this.resTrailer) };
  }
}
