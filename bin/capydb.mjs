#!/usr/bin/env node
// Runs the TypeScript source directly (tsx), like capydb-admin; a published package would ship a bundle.
import { register } from "tsx/esm/api";
register();
await import("../cli/capydb.ts");
