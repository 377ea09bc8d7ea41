// Unary calls with a hand-made body, below the generated clients, so a test can send bytes no
// client would: gRPC over node:http2 (h2c, 5-byte length prefix), gRPC-web and Connect over
// fetch. Each answers the canonical status code the server chose.
import http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";

export interface RawAnswer {
  readonly code: Code;
  /** HTTP status (gRPC-web and Connect), for the failure message. */
  readonly httpStatus: number;
}

/** A gRPC / gRPC-web data frame: flag 0 (not compressed), big-endian length, message. */
export function frame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Raw gRPC calls on one HTTP/2 connection to the grpc-js server. */
export function rawGrpc(address: string): { call(path: string, body: Uint8Array, headers: Record<string, string>): Promise<RawAnswer>; close(): void } {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => {}); // a failed call reports through its stream
  return {
    call: (path, body, headers) =>
      new Promise<RawAnswer>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
        let status: string | undefined;
        let httpStatus = 0;
        stream.on("response", (head) => {
          httpStatus = Number(head[":status"]);
          if (head["grpc-status"] !== undefined) status = String(head["grpc-status"]); // trailers-only answer
        });
        stream.on("trailers", (trailers) => {
          if (trailers["grpc-status"] !== undefined) status = String(trailers["grpc-status"]);
        });
        stream.on("data", () => {});
        stream.on("end", () => (status === undefined ? reject(new Error(`no grpc-status (HTTP ${httpStatus})`)) : resolve({ code: Number(status), httpStatus })));
        stream.on("error", reject);
        stream.end(Buffer.from(body));
      }),
    close: () => session.close(),
  };
}

/** A raw gRPC-web call (binary) on the gateway; `body` is sent as is (frame it with `frame`). */
export async function rawGrpcWeb(url: string, body: Uint8Array, headers: Record<string, string>): Promise<RawAnswer> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...headers },
    body: new Uint8Array(body),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const inHeaders = response.headers.get("grpc-status");
  if (inHeaders !== null) return { code: Number(inHeaders), httpStatus: response.status };
  // The status travels in the trailer frame (flag 0x80) at the end of the body.
  for (let at = 0; at + 5 <= bytes.length; ) {
    const flags = bytes[at]!;
    const length = bytes.readUInt32BE(at + 1);
    if (flags & 0x80) {
      const match = /^grpc-status:\s*(\d+)/im.exec(bytes.subarray(at + 5, at + 5 + length).toString("latin1"));
      if (match) return { code: Number(match[1]), httpStatus: response.status };
    }
    at += 5 + length;
  }
  throw new Error(`gRPC-web answer without grpc-status (HTTP ${response.status})`);
}

/** A raw Connect unary call on the gateway: the body is the message itself, no framing. */
export async function rawConnect(
  url: string,
  contentType: "application/proto" | "application/json" | "application/connect+proto" | "application/connect+json",
  body: Uint8Array,
  headers: Record<string, string>,
): Promise<RawAnswer> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": contentType, ...headers }, body: new Uint8Array(body) });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const text = new TextDecoder().decode(bytes);
  if (response.status === 200 && contentType.startsWith("application/connect+")) {
    // A streaming answer: its status is in the end-of-stream envelope (flag 0x02), JSON.
    return { code: endOfStreamCode(bytes), httpStatus: 200 };
  }
  if (response.status === 200) return { code: 0 as Code, httpStatus: 200 };
  let code: Code | undefined;
  try {
    code = codeFromString(String((JSON.parse(text) as { code?: unknown }).code));
  } catch {
    code = undefined;
  }
  // Anything but a Connect error body (a bare 500, say) counts as UNKNOWN, which fails the property.
  return { code: code ?? Code.Unknown, httpStatus: response.status };
}

/** The code of a Connect stream's end-of-stream message: 0 without an error, UNKNOWN when there is none to read. */
function endOfStreamCode(bytes: Uint8Array): Code {
  let offset = 0;
  while (offset + 5 <= bytes.length) {
    const flags = bytes[offset]!;
    const length = new DataView(bytes.buffer, bytes.byteOffset + offset + 1, 4).getUint32(0);
    const payload = bytes.subarray(offset + 5, offset + 5 + length);
    offset += 5 + length;
    if ((flags & 0x02) === 0) continue;
    try {
      const end = JSON.parse(new TextDecoder().decode(payload)) as { error?: { code?: unknown } };
      return end.error === undefined ? (0 as Code) : (codeFromString(String(end.error.code)) ?? Code.Unknown);
    } catch {
      return Code.Unknown;
    }
  }
  return Code.Unknown;
}
