// The browser app's files (built by `npm run build` into dist/web/), served by the gateway at /
// with headers that hold the page to its own code: a strict Content-Security-Policy (scripts,
// styles and calls from this origin only; images also from data: URLs, for the TOTP QR code),
// no framing, no MIME sniffing, no Referer.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type http from "node:http";
import path from "node:path";

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/app.css": { file: "app.css", type: "text/css; charset=utf-8" },
};

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers of every page response; HSTS only where the gateway is reached over https. */
export function securityHeaders(tls: boolean): Record<string, string> {
  return {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    ...(tls ? { "strict-transport-security": "max-age=31536000" } : {}),
  };
}

interface Asset {
  readonly body: Buffer;
  readonly etag: string;
}

/**
 * A handler for the app's paths: answers GET and HEAD of /, /index.html, /app.js and /app.css
 * (404 with a hint while the bundle is not built) and returns false for every other request.
 */
export function createWebApp(dir: string, tls: boolean): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const cache = new Map<string, Promise<Asset>>();
  const headers = securityHeaders(tls);

  function load(file: string): Promise<Asset> {
    let asset = cache.get(file);
    if (!asset) {
      asset = readFile(path.join(dir, file)).then((body) => ({ body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` }));
      // A missing file is looked for again next time (the bundle may be built meanwhile).
      asset.catch(() => cache.delete(file));
      cache.set(file, asset);
    }
    return asset;
  }

  return (req, res) => {
    const entry = FILES[(req.url ?? "/").split("?")[0]!];
    if (!entry || (req.method !== "GET" && req.method !== "HEAD")) return false;
    load(entry.file).then(
      (asset) => {
        const common = { ...headers, "cache-control": "no-cache", etag: asset.etag };
        if (req.headers["if-none-match"] === asset.etag) {
          res.writeHead(304, common).end();
          return;
        }
        res.writeHead(200, { ...common, "content-type": entry.type, "content-length": asset.body.length });
        res.end(req.method === "HEAD" ? undefined : asset.body);
      },
      () => {
        res.writeHead(404, { ...headers, "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
        res.end("The web app is not built: run `npm run build` (npm start does).\n");
      },
    );
    return true;
  };
}
