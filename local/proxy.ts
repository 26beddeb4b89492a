import { createServer, request, type Server } from "node:http";

/**
 * One local AWS endpoint: requests for DynamoDB (JSON protocol, `X-Amz-Target: DynamoDB_...`) go to
 * DynamoDB Local, everything else (SQS, S3) to fauxqs. This lets `.capydb/local.json` name a single
 * `aws.endpoint`, as one region's endpoints do on AWS.
 */
export function startAwsProxy(opts: { port: number; dynamodb: string; fauxqs: string }): Promise<{ endpoint: string; server: Server; stop(): Promise<void> }> {
  const ddb = new URL(opts.dynamodb);
  const fq = new URL(opts.fauxqs);
  const server = createServer((req, res) => {
    const target = String(req.headers["x-amz-target"] ?? "").startsWith("DynamoDB") ? ddb : fq;
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ __type: "ServiceUnavailable", message: `local stand-in unreachable: ${err.message}` }));
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : opts.port;
      resolve({
        endpoint: `http://127.0.0.1:${port}`,
        server,
        stop: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
