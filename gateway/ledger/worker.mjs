// Starts a TypeScript worker module: the gateway runs under tsx, and a worker thread does not
// inherit tsx's loader (nor vitest's transform), so the worker registers it before importing.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.module);
