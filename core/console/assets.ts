import { createHash } from "node:crypto";
import { staticFiles } from "./static-files.ts";

const types: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

export interface Asset {
  body: string;
  type: string;
  /** First 12 hex digits of the SHA-256 of the body: the `?v=` of its URL. */
  version: string;
}

const assets = new Map<string, Asset>(
  Object.entries(staticFiles).map(([name, body]) => [
    name,
    { body, type: types[name.split(".").pop() ?? ""] ?? "application/octet-stream", version: createHash("sha256").update(body).digest("hex").slice(0, 12) },
  ]),
);

export const getAsset = (name: string): Asset | undefined => assets.get(name);

/**
 * The URL of a static file, versioned by its content: a browser may keep it for a year, and a
 * deploy that changes the file changes the URL.
 */
export function assetUrl(name: string): string {
  const asset = assets.get(name);
  if (!asset) throw new Error(`no console asset named ${name}`);
  return `/console/assets/${name}?v=${asset.version}`;
}
