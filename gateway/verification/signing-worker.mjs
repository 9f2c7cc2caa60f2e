// Signs proofs off the gateway's main thread: receives the signing inputs of a batch (the JWS
// header and payload segments, already encoded) and answers with the signature segments.
// Plain JavaScript: a worker thread does not inherit tsx's loader, and this needs none.
import { sign } from "node:crypto";
import { parentPort } from "node:worker_threads";

let key = null;
parentPort.on("message", (message) => {
  if (message.key) key = message.key;
  const signatures = message.inputs.map((input) =>
    sign(null, Buffer.from(input), key).toString("base64url"),
  );
  parentPort.postMessage({ id: message.id, signatures });
});
