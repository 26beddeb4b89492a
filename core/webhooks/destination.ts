import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { DestinationPolicy } from "../deps.ts";

/**
 * Where a webhook may be sent (SSRF safety). A URL must be https; its host, or every address its
 * name resolves to, must be a public address: every range of the IANA IPv4 and IPv6
 * special-purpose registries is refused (loopback, private, link-local with the cloud metadata
 * service at 169.254.169.254, carrier-grade NAT, documentation, benchmarking...), and so are
 * multicast, the deprecated IPv6 ranges (site-local, IPv4-compatible, SIIT) and any IPv6 address
 * outside global unicast. The IPv6 forms that carry an IPv4 address are judged by it (IPv4-mapped,
 * well-known NAT64) or refused outright (local-use NAT64, 6to4, Teredo: the refusal names the
 * IPv4 they carry). The check runs when an endpoint is created or changed and again before every
 * delivery, which then connects to the very address it checked and checks the connected socket's
 * address once more before sending a byte (core/webhooks/http.ts), so a DNS answer that changes in
 * between (rebinding) cannot redirect a delivery inside the network.
 */

export type { DestinationPolicy };

export const defaultPolicy: DestinationPolicy = { allowLoopbackHttp: false };

export class DestinationRefused extends Error {
  override name = "DestinationRefused";
}

/** One range of addresses that never receives webhooks, named as the IANA registries name it. */
interface Range {
  prefix: string;
  name: string;
  /** The IPv4 address(es) a transition form carries, checked by the IPv4 rules to say what it points at. */
  carries?: (a: bigint) => string[];
}

/**
 * The IANA IPv4 Special-Purpose Address Registry, every entry, plus multicast: no webhook receiver
 * lives in any of them, so even the entries the registry marks globally reachable (anycast, AS112,
 * AMT) are refused.
 */
const ipv4Ranges: Range[] = [
  { prefix: "0.0.0.0/8", name: "this network" },
  { prefix: "10.0.0.0/8", name: "private-use" },
  { prefix: "100.64.0.0/10", name: "shared address space (carrier-grade NAT)" },
  { prefix: "127.0.0.0/8", name: "loopback" },
  { prefix: "169.254.0.0/16", name: "link-local" },
  { prefix: "172.16.0.0/12", name: "private-use" },
  { prefix: "192.0.0.0/24", name: "IETF protocol assignments" },
  { prefix: "192.0.2.0/24", name: "documentation (TEST-NET-1)" },
  { prefix: "192.31.196.0/24", name: "AS112-v4" },
  { prefix: "192.52.193.0/24", name: "AMT" },
  { prefix: "192.88.99.0/24", name: "deprecated 6to4 relay anycast" },
  { prefix: "192.168.0.0/16", name: "private-use" },
  { prefix: "192.175.48.0/24", name: "direct delegation AS112 service" },
  { prefix: "198.18.0.0/15", name: "benchmarking" },
  { prefix: "198.51.100.0/24", name: "documentation (TEST-NET-2)" },
  { prefix: "203.0.113.0/24", name: "documentation (TEST-NET-3)" },
  { prefix: "224.0.0.0/4", name: "multicast" },
  { prefix: "240.0.0.0/4", name: "reserved, limited broadcast" },
];

const v4Of = (n: bigint) => [24n, 16n, 8n, 0n].map((s) => Number((n >> s) & 0xffn)).join(".");
const low32 = (a: bigint) => [v4Of(a & 0xffffffffn)];

/**
 * IPv6 addresses are refused unless they are global unicast (2000::/3) outside every entry of the
 * IANA IPv6 Special-Purpose Address Registry, or one of the two forms the network delivers to a
 * plain IPv4 address (IPv4-mapped, well-known NAT64), which are judged by that IPv4 address. The
 * ranges outside 2000::/3 are listed for their names (and for the IPv4 they carry): the /3 rule
 * refuses them anyway, with whatever the registries add there later.
 */
const ipv6Ranges: Range[] = [
  { prefix: "::/128", name: "unspecified" },
  { prefix: "::1/128", name: "loopback" },
  { prefix: "::ffff:0:0:0/96", name: "SIIT IPv4-translated (deprecated)", carries: low32 },
  { prefix: "::/96", name: "IPv4-compatible (deprecated)", carries: low32 },
  { prefix: "64:ff9b:1::/48", name: "local-use IPv4/IPv6 translation (NAT64)", carries: low32 },
  { prefix: "100::/64", name: "discard-only" },
  { prefix: "100:0:0:1::/64", name: "dummy IPv6 prefix" },
  // 2001::/23 is the IETF protocol assignments block: Teredo, benchmarking, AMT, AS112, ORCHID, DETs...
  {
    prefix: "2001::/32",
    name: "Teredo",
    // server IPv4 in bits 32-63, client IPv4 (each bit inverted) in the last 32
    carries: (a) => [v4Of((a >> 64n) & 0xffffffffn), v4Of(~a & 0xffffffffn)],
  },
  { prefix: "2001::/23", name: "IETF protocol assignments" },
  { prefix: "2001:db8::/32", name: "documentation" },
  { prefix: "2002::/16", name: "6to4", carries: (a) => [v4Of((a >> 80n) & 0xffffffffn)] },
  { prefix: "2620:4f:8000::/48", name: "direct delegation AS112 service" },
  { prefix: "3fff::/20", name: "documentation" },
  { prefix: "5f00::/16", name: "segment routing (SRv6) SIDs" },
  { prefix: "fc00::/7", name: "unique local" },
  { prefix: "fe80::/10", name: "link-local" },
  { prefix: "fec0::/10", name: "site-local (deprecated)" },
  { prefix: "ff00::/8", name: "multicast" },
];

/** The forms that stand for a plain IPv4 address, judged by that address. */
const ipv4Forms: Range[] = [
  { prefix: "::ffff:0:0/96", name: "IPv4-mapped", carries: low32 },
  { prefix: "64:ff9b::/96", name: "well-known NAT64", carries: low32 },
];

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

/** The address as a number (IPv4 in 32 bits, IPv6 in 128), or undefined when it is not an IP address. */
function toBigInt(address: string): { n: bigint; v6: boolean } | undefined {
  const a = address.replace(/%.*$/, ""); // a zone id does not change where the address is
  const family = isIP(a);
  if (family === 4) return { n: a.split(".").reduce((acc, o) => (acc << 8n) | BigInt(o), 0n), v6: false };
  if (family === 6) return { n: ipv6Groups(a).reduce((acc, g) => (acc << 16n) | BigInt(g), 0n), v6: true };
  return undefined;
}

function inRange(n: bigint, v6: boolean, prefix: string): boolean {
  const [net, len] = prefix.split("/") as [string, string];
  const bits = v6 ? 128n : 32n;
  const shift = bits - BigInt(len);
  return n >> shift === toBigInt(net)!.n >> shift;
}

const metadata = new Set(["169.254.169.254", "fd00:ec2::254"]);

/** Why a plain IPv4 address may not receive webhooks ("a loopback address"...), or undefined. */
function ipv4Refusal(n: bigint, policy: DestinationPolicy): string | undefined {
  const range = ipv4Ranges.find((r) => inRange(n, false, r.prefix));
  if (!range) return undefined;
  if (range.name === "loopback") return policy.allowLoopbackHttp ? undefined : "a loopback address";
  if (metadata.has(v4Of(n))) return "the cloud metadata service";
  return `a private, link-local or reserved address (${range.name}, ${range.prefix})`;
}

/** Why `address` may not receive webhooks, or undefined when it may. */
export function refusedAddress(address: string, policy: DestinationPolicy = defaultPolicy): string | undefined {
  const parsed = toBigInt(address);
  if (!parsed) return `${address} is not an IP address`;
  const { n, v6 } = parsed;
  if (!v6) {
    const why = ipv4Refusal(n, policy);
    return why && `${address} is ${why}`;
  }
  const form = ipv4Forms.find((r) => inRange(n, true, r.prefix));
  if (form) {
    const v4 = form.carries!(n)[0]!;
    const why = ipv4Refusal(toBigInt(v4)!.n, policy);
    return why && `${address} is the ${form.name} form of ${v4}, ${why}`;
  }
  if (n === 1n) return policy.allowLoopbackHttp ? undefined : `${address} is a loopback address`;
  if (metadata.has(address.toLowerCase())) return `${address} is the cloud metadata service`;
  const range = ipv6Ranges.find((r) => inRange(n, true, r.prefix));
  if (range) {
    // Say what a transition form points at when that is what makes it dangerous.
    const carried = range.carries?.(n).find((v4) => ipv4Refusal(toBigInt(v4)!.n, { allowLoopbackHttp: false }));
    const why = carried ? `, carrying ${carried}, ${ipv4Refusal(toBigInt(carried)!.n, { allowLoopbackHttp: false })}` : "";
    return `${address} is a private, link-local or reserved address (${range.name}, ${range.prefix})${why}`;
  }
  if (!inRange(n, true, "2000::/3")) return `${address} is a private, link-local or reserved address (not global unicast, outside 2000::/3)`;
  return undefined;
}

const isLoopback = (address: string) => refusedAddress(address) !== undefined && refusedAddress(address, { allowLoopbackHttp: true }) === undefined;

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
