/**
 * Digests of the answers a load received, by the ids each request asked: the load generator
 * records one per complete answer, and the orchestrator compares them across gateways, rounds and
 * slices (every gateway must answer the same request with the same data). Eight bytes of the
 * body's SHA-1: a check that two answers are the same, not a security measure.
 */
import { hash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const DIGEST_BYTES = 8;
/** One answer in the file: the position of its ids in the shuffled list (uint32), its digest. */
const RECORD_BYTES = 4 + DIGEST_BYTES;

/** The digests of one load, grown by doubling as answers come in. */
export class AnswerDigests {
  private bytes = Buffer.alloc(RECORD_BYTES * 1024);
  private count = 0;

  add(position: number, body: string): void {
    if ((this.count + 1) * RECORD_BYTES > this.bytes.length) {
      const larger = Buffer.alloc(this.bytes.length * 2);
      this.bytes.copy(larger);
      this.bytes = larger;
    }
    const at = this.count++ * RECORD_BYTES;
    this.bytes.writeUInt32LE(position, at);
    // Apollo Server ends its JSON with a newline; the answer is the same without it.
    hash("sha1", body.trimEnd(), "buffer").copy(this.bytes, at + 4, 0, DIGEST_BYTES);
  }

  write(file: string): void {
    writeFileSync(file, this.bytes.subarray(0, this.count * RECORD_BYTES));
  }
}

/**
 * A file `AnswerDigests.write` wrote: each answer's position of the ids asked and digest (hex), in
 * the order received — a load that wrapped around the id list asked some positions twice.
 */
export function readAnswerDigests(file: string): Array<[position: number, digest: string]> {
  const bytes = readFileSync(file);
  const digests: Array<[number, string]> = [];
  for (let at = 0; at + RECORD_BYTES <= bytes.length; at += RECORD_BYTES) {
    digests.push([bytes.readUInt32LE(at), bytes.toString("hex", at + 4, at + RECORD_BYTES)]);
  }
  return digests;
}
