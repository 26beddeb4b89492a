/**
 * Bench child: the real API app (`createApp`, unchanged) served with @hono/node-server, inside a
 * bench-only Hono app that adds the unauthenticated trivial route `/bench/ping` (the baseline) and
 * `/bench/stats` (DynamoDB calls counted by a middleware on the Deps' client). One process, one
 * server, so the baseline and the real routes share everything but the route's own work.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { createApp } from "../../core/api/app.ts";
import { loadConfig } from "../../core/config.ts";
import { createDeps } from "../../core/deps.ts";
import { countDdb } from "../lib/ddb-counter.ts";

const port = Number(process.env.BENCH_PORT);
const deps = createDeps(loadConfig());
const ddb = countDdb(deps.ddb);
const app = createApp({ deps });

/** Completed requests of the real app, and requests still in flight (the bench waits for 0). */
let requests = 0;
let inFlight = 0;
const bench = new Hono();
bench.get("/bench/ping", (c) => c.text("pong"));
bench.get("/bench/stats", (c) => {
  const body = { requests, inFlight, ddb: ddb.snapshot() };
  if (c.req.query("reset")) {
    ddb.reset();
    requests = 0;
  }
  return c.json(body);
});
bench.all("*", async (c) => {
  inFlight++;
  try {
    // Hono builds a JSON body before it resolves: the request's DynamoDB calls are all made here.
    return await app.fetch(c.req.raw, c.env);
  } finally {
    inFlight--;
    requests++;
  }
});

const server = serve({ fetch: bench.fetch, port, hostname: "127.0.0.1" }, () => {
  process.stdout.write("BENCH_READY\n");
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
