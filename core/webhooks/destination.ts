import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/**
 * Where a webhook may be sent (SSRF safety). A URL must be https; its host, or every address its
 * name resolves to, must be a public address: loopback, private, link-local (the cloud metadata
 * service at 169.254.169.254 included), carrier-grade NAT, multicast and reserved ranges are
 * refused, and so are IPv6 forms that embed one (IPv4-mapped, NAT64). The check runs when an
 * endpoint is created or changed and again before every delivery, which then connects to the very
 * address it checked (core/webhooks/http.ts), so a DNS answer that changes in between (rebinding)
 * cannot redirect a delivery inside the network.
 */

export interface DestinationPolicy {
  /**
   * The local stack only (`npm start`): loopback receivers are allowed, over http too. Never set
   * by a deploy; tests of the refusals run without it.
   */
  allowLoopbackHttp: boolean;
  /** Name resolution (default: the system resolver, every address). Tests inject answers a real resolver here cannot give. */
  lookup?: (hostname: string) => Promise<{ address: string; family: number }[]>;
}

export const defaultPolicy: DestinationPolicy = { allowLoopbackHttp: false };

export class DestinationRefused extends Error {
  override name = "DestinationRefused";
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 96], // unspecified, loopback (::1), IPv4-compatible
  ["100::", 64], // discard
  ["fc00::", 7], // unique local (AWS's IPv6 metadata fd00:ec2::254 included)
  ["fe80::", 10], // link-local
  ["ff00::", 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, "ipv6");
}

const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

/** The 8 groups of an IPv6 address (`::` expanded; a trailing dotted IPv4 becomes two groups). */
function ipv6Groups(address: string): number[] {
  let a = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    const [p, q, r, s] = dotted[1]!.split(".").map(Number) as [number, number, number, number];
    a = a.slice(0, -dotted[1]!.length) + `${((p << 8) | q).toString(16)}:${((r << 8) | s).toString(16)}`;
  }
  const [head, tail] = a.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((g) => parseInt(g || "0", 16));
}

/** The IPv4 address an IPv6 one carries (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d), if any. */
function embeddedIpv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  if (!mapped && !nat64) return undefined;
  return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join(".");
}

/** Why `address` may not receive webhooks, or undefined when it may. */
export function refusedAddress(address: string, policy: DestinationPolicy = defaultPolicy): string | undefined {
  const family = isIP(address);
  if (!family) return `${address} is not an IP address`;
  const v4 = family === 6 ? embeddedIpv4(address) : address;
  const [addr, type] = v4 ? [v4, "ipv4" as const] : [address, "ipv6" as const];
  if (policy.allowLoopbackHttp && loopback.check(addr, type)) return undefined;
  if (blocked.check(addr, type)) {
    const what =
      addr === "169.254.169.254" || address.toLowerCase() === "fd00:ec2::254"
        ? "the cloud metadata service"
        : loopback.check(addr, type)
          ? "a loopback address"
          : "a private, link-local or reserved address";
    return `${address} is ${what}`;
  }
  return undefined;
}

const isLoopback = (address: string) => {
  const family = isIP(address);
  const v4 = family === 6 ? embeddedIpv4(address) : address;
  return v4 ? loopback.check(v4, "ipv4") : loopback.check(address, "ipv6");
};

/**
 * Parses and checks a webhook URL's shape (no DNS): https (http only for loopback receivers under
 * the local-stack setting), no credentials in it, at most 2,048 characters. Throws
 * DestinationRefused with a message fit for a 400.
 */
export function parseWebhookUrl(raw: string, policy: DestinationPolicy = defaultPolicy): URL {
  if (raw.length > 2048) throw new DestinationRefused("url is longer than 2048 characters");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DestinationRefused("url is not a valid URL");
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && policy.allowLoopbackHttp)) {
    throw new DestinationRefused("url must use https");
  }
  if (url.username || url.password) throw new DestinationRefused("url must not contain credentials");
  if (!url.hostname) throw new DestinationRefused("url has no host");
  return url;
}

/** The host of a URL as an address when it is an IP literal (`[::1]` -> `::1`). */
const literalHost = (url: URL): string | undefined => {
  const h = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return isIP(h) ? h : undefined;
};

/**
 * Resolves the URL's host and checks every address it resolves to (one bad address refuses the
 * URL: a resolver may answer differently at connect time). Returns the address to connect to.
 */
export async function resolveDestination(url: URL, policy: DestinationPolicy = defaultPolicy): Promise<{ address: string; family: 4 | 6 }> {
  const literal = literalHost(url);
  let addresses: { address: string; family: number }[];
  if (literal) addresses = [{ address: literal, family: isIP(literal) }];
  else {
    try {
      addresses = policy.lookup ? await policy.lookup(url.hostname) : await dnsLookup(url.hostname, { all: true, verbatim: true });
    } catch (err) {
      throw new DestinationRefused(`url's host ${url.hostname} does not resolve (${(err as { code?: string }).code ?? String(err)})`);
    }
    if (!addresses.length) throw new DestinationRefused(`url's host ${url.hostname} does not resolve`);
  }
  for (const a of addresses) {
    const why = refusedAddress(a.address, policy);
    if (why) throw new DestinationRefused(literal ? `url's host ${why}` : `url's host ${url.hostname} resolves to ${why}`);
  }
  const chosen = addresses[0]!;
  if (url.protocol === "http:" && !isLoopback(chosen.address)) throw new DestinationRefused("url must use https");
  return { address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
}

/** Shape and resolution together: what the API runs on a URL before storing it. */
export async function checkWebhookUrl(raw: string, policy: DestinationPolicy = defaultPolicy): Promise<URL> {
  const url = parseWebhookUrl(raw, policy);
  await resolveDestination(url, policy);
  return url;
}
