// Signs proofs off the gateway's main thread. Two kinds of message:
// - `inputs`: JWS signing inputs (header and payload segments, already encoded), answered with
//   their signature segments (Query.verify, which returns proofs one by one);
// - `batch`: packed verdicts (proof-lines.d.mts), answered with their result lines, proofs
//   included, in one buffer handed over without a copy (npm run verify, jobs).
// Plain JavaScript: a worker thread does not inherit tsx's loader, and this needs none.
import { parentPort } from "node:worker_threads";
import { ed25519Signer, encodeLines } from "./proof-lines.mjs";

let signer = null;
parentPort.on("message", (message) => {
  try {
    if (message.key) {
      // Never sign with the previous key once a new one was sent.
      signer = null;
      signer = ed25519Signer(message.key);
    }
    if (!signer) throw new Error("no signing key");
    if (message.batch) {
      const lines = encodeLines(message.batch, message.start, message.end, signer);
      parentPort.postMessage({ id: message.id, buffer: lines.buffer, length: lines.length }, [
        lines.buffer,
      ]);
      return;
    }
    const signatures = message.inputs.map((input) =>
      signer.sign(Buffer.from(input)).toString("base64url"),
    );
    parentPort.postMessage({ id: message.id, signatures });
  } catch (error) {
    // The request fails, the thread stays.
    parentPort.postMessage({ id: message.id, error: String(error?.message ?? error) });
  }
});
