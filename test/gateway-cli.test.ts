/**
 * `npm run gateway` that cannot listen (its port taken) says so, exits 1, and closes what it had
 * opened: no audit journal is left behind in the data directory.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { createServer } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { exitOf, tempDataDir } from "./helpers.ts";

const data = tempDataDir();
afterAll(() => data.remove());

describe("npm run gateway", () => {
  it("exits 1 when its port is taken, leaving no journal", { timeout: 60_000 }, async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as { port: number };
    try {
      const child = spawn(process.execPath, ["--import", "tsx", "scripts/gateway.ts"], {
        env: { ...process.env, PORT: String(port), DATA_DIR: data.dir, LOG_LEVEL: "warn" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const { code, output } = await exitOf(child);
      expect(code).toBe(1);
      expect(output).toContain("gateway: could not start");
      expect(output).toContain("EADDRINUSE");
      expect(readdirSync(data.dir).filter((name) => name.includes(".journal"))).toEqual([]);
    } finally {
      taken.close();
    }
  });
});
