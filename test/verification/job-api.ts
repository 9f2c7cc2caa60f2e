/**
 * The job API (`/jobs`) as a desk calls it, for the tests that drive it: submit, progress, wait,
 * read the results. The platform is passed as a getter, since a test may restart it.
 */
import type { Platform } from "../platform.ts";
import { DEV_DESK } from "../platform.ts";
import { D } from "./records.ts";

export const POLICY = "beijing-car-lottery/individual";

export interface JobView {
  id: string;
  status: string;
  total: number;
  done: number;
  counts: { byOutcome: Record<string, number> };
  results: string;
  recheckOf: string | null;
  errors?: Array<{ message: string; extensions: { code: string } }>;
}

export interface ResultLine {
  subject: string;
  outcome: string;
  unavailable: string[];
  proof?: string;
}

export function jobApi(platform: () => Platform) {
  const base = () => platform().url.replace(/\/graphql$/, "");

  async function call(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; body: JobView }> {
    const response = await fetch(`${base()}${path}`, { method, headers, body });
    return { status: response.status, body: (await response.json()) as JobView };
  }

  const progress = (id: string, headers: Record<string, string> = DEV_DESK) =>
    call("GET", `/jobs/${id}`, headers);

  /** Polls a job until `reached` holds for it; fails the test, naming what it saw, after 60 s. */
  async function until(
    id: string,
    reached: (job: JobView) => boolean,
    every = 100,
  ): Promise<JobView> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { body } = await progress(id);
      if (reached(body)) return body;
      if (Date.now() > deadline) throw new Error(`job ${id} is still ${JSON.stringify(body)}`);
      await new Promise((resolve) => setTimeout(resolve, every));
    }
  }

  return {
    base,
    progress,
    until,
    finished: (id: string) => until(id, (job) => job.status === "done" || job.status === "failed"),
    submit: (
      body: string,
      query = `policy=${encodeURIComponent(POLICY)}&on=${D}`,
      headers: Record<string, string> = DEV_DESK,
    ) => call("POST", `/jobs?${query}`, { "content-type": "text/csv", ...headers }, body),
    recheck: (id: string, headers: Record<string, string> = DEV_DESK) =>
      call("POST", `/jobs/${id}/recheck`, headers),
    async results(id: string, headers: Record<string, string> = DEV_DESK) {
      const response = await fetch(`${base()}/jobs/${id}/results`, { headers });
      const text = await response.text();
      const raw = text.split("\n").filter((line) => line !== "");
      return {
        status: response.status,
        text,
        raw,
        lines: raw.map((line) => JSON.parse(line) as ResultLine),
      };
    },
  };
}
