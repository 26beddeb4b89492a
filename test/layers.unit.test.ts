import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { layers } from "../core/layers.ts";

// Pure: reads the source tree, starts nothing.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const core = path.join(root, "core");

/** Every TypeScript module under core/, as a path relative to core/ ("worker/backup.ts"). */
function modules(dir = core): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return modules(full);
    return /\.tsx?$/.test(e.name) && !e.name.endsWith(".d.ts") ? [path.relative(core, full)] : [];
  });
}

/** The modules under core/ that `file` imports (static, type-only, re-exports and dynamic imports alike). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(path.join(core, file), "utf8"), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith("."))
    .map((spec) => path.relative(core, path.resolve(core, path.dirname(file), spec)))
    .filter((target) => !target.startsWith(".."));
}

/** The entry of the layer list a module belongs to: its directory under core/, or its own name at core/'s root. */
const unitOf = (file: string) => file.split(path.sep)[0]!;
const rank = new Map(layers.flatMap((layer, i) => layer.map((unit) => [unit, i] as const)));
const graph = new Map(modules().map((file) => [file, importsOf(file)]));

/** The same graph without type-only imports (`import type`), which are erased before anything runs. */
const runtimeGraph = new Map(
  [...graph].map(([file, targets]) => {
    const src = readFileSync(path.join(core, file), "utf8");
    const typeOnly = new Set(
      [...src.matchAll(/^(?:import|export) type [^;]*? from "(\.[^"]+)";/gm)].map((m) => path.relative(core, path.resolve(core, path.dirname(file), m[1]!))),
    );
    const valued = new Set(
      [...src.matchAll(/^(?:import|export) (?!type )[^;]*? from "(\.[^"]+)";|import\("(\.[^"]+)"\)/gm)].map((m) =>
        path.relative(core, path.resolve(core, path.dirname(file), (m[1] ?? m[2])!)),
      ),
    );
    return [file, targets.filter((t) => valued.has(t) || !typeOnly.has(t))] as const;
  }),
);

/** One cycle through the import graph, or undefined. */
function findCycle(g: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    state.set(node, "open");
    stack.push(node);
    for (const next of g.get(node) ?? []) {
      if (state.get(next) === "open") return [...stack.slice(stack.indexOf(next)), next];
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of g.keys()) {
    if (!state.has(node)) {
      const found = visit(node);
      if (found) return found;
    }
  }
  return undefined;
}

describe("the layers of core/ (core/layers.ts)", () => {
  it("reads the imports it judges (sanity: the worker imports the engine, the engine imports pgconn)", () => {
    expect(graph.get(path.join("worker", "backup.ts"))).toContain(path.join("pg", "scratch.ts"));
    expect(graph.get(path.join("pg", "dump.ts"))).toContain(path.join("pg", "pgconn.ts"));
    expect(graph.size).toBeGreaterThan(100);
  });

  it("places every directory and root module of core/ in exactly one layer", () => {
    const listed = layers.flat();
    expect(listed.length, "an entry listed twice").toBe(new Set(listed).size);
    const unplaced = [...new Set([...graph.keys()].map(unitOf))].filter((u) => !rank.has(u));
    expect(unplaced, "add these to core/layers.ts (and docs/architecture.md)").toEqual([]);
  });

  it("has no import from a layer above the importing module's", () => {
    const upward = [...graph].flatMap(([file, targets]) =>
      targets.filter((t) => (rank.get(unitOf(t)) ?? Infinity) < (rank.get(unitOf(file)) ?? -Infinity)).map((t) => `core/${file} imports core/${t}`),
    );
    expect(upward).toEqual([]);
  });

  it("has no import cycle between modules (type-only imports aside: they never run)", () => {
    expect(
      findCycle(runtimeGraph)
        ?.map((f) => `core/${f}`)
        .join(" -> "),
    ).toBeUndefined();
  });

  it("finds a cycle when there is one (the lifecycle <-> offload pair it replaced)", () => {
    const [lifecycle, offload, options] = ["worker/lifecycle.ts", "worker/offload.ts", "worker/options.ts"].map((f) => path.join(...f.split("/")));
    const bad = new Map([
      [lifecycle!, [options!, offload!]],
      [offload!, [options!, lifecycle!]],
    ]);
    expect(findCycle(bad)).toEqual([lifecycle, offload, lifecycle]);
  });

  it("sends DynamoDB commands only through core/db (store.ts reads every refusal); the AWS clients and the health probe aside", () => {
    const senders = [...graph.keys()].filter((file) => {
      const info = ts.preProcessFile(readFileSync(path.join(core, file), "utf8"), true, true);
      const src = readFileSync(path.join(core, file), "utf8");
      // A type-only import (`import type`) sends nothing.
      const valueImport = /import\s+(?!type\b)[^;]*from\s+"@aws-sdk\/(lib|client)-dynamodb"/.test(src);
      return valueImport && info.importedFiles.some((f) => /^@aws-sdk\/(lib|client)-dynamodb$/.test(f.fileName));
    });
    const allowed = (f: string) => unitOf(f) === "db" || f === path.join("aws", "clients.ts") || f === path.join("api", "health.ts");
    expect(senders.filter((f) => !allowed(f)).map((f) => `core/${f}`)).toEqual([]);
  });

  it("is the list docs/architecture.md draws, top first", () => {
    const doc = readFileSync(path.join(root, "docs", "architecture.md"), "utf8");
    const block = /## Layers[\s\S]*?```\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block, "docs/architecture.md has a '## Layers' section with the picture in a code block").toBeDefined();
    const drawn = block!
      .split("\n")
      .filter((line) => /^\s{2}\S/.test(line))
      .map((line) =>
        line
          .trim()
          .split(/\s{2,}/)[0]!
          .split(" ")
          .map((u) => u.replace(/\/$/, "")),
      );
    expect(drawn).toEqual(layers.map((layer) => [...layer]));
  });
});
