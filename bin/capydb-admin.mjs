#!/usr/bin/env node
// Runs the TypeScript source directly (tsx), so the operator tool is always the checked-out code.
import { register } from "tsx/esm/api";
register();
await import("../cli/admin.ts");
