/**
 * Large JSON answers written without large strings or fresh buffers: text in pieces of about
 * 32 KB, copied into reused buffers. Departments answer batches of 1,000 entities and the gateway
 * answers 1,000 persons' facts this way.
 */
/**
 * Response text is built in pieces of about this many characters. A string over 128 KiB lives in
 * V8's large-object space, on pages mapped afresh for it: an answer of 150 KB written as one
 * string cost about a hundred page faults (a third of the household register's system time).
 */
const RESPONSE_PIECE_CHARS = 32 * 1024;

/** Values JSON.stringify leaves out of objects. */
function isOmitted(value: unknown): boolean {
  return value === undefined || typeof value === "function" || typeof value === "symbol";
}

/**
 * `JSON.stringify(value)` as pieces of about `RESPONSE_PIECE_CHARS`: the outer objects (response,
 * `data`) are written here and their lists (root fields, `_entities`) by JSON.stringify a slice of
 * elements at a time, the slice sized to give about a quarter of a piece. The pieces joined are
 * exactly the text JSON.stringify would give.
 */
export function jsonPieces(value: unknown, pieceChars = RESPONSE_PIECE_CHARS): string[] {
  const pieces: string[] = [];
  let current = "";
  const write = (text: string) => {
    current += text;
    if (current.length >= pieceChars) {
      pieces.push(current);
      current = "";
    }
  };
  const sliceChars = Math.max(1, pieceChars >> 2);
  const writeList = (list: readonly unknown[]) => {
    write("[");
    let step = 64;
    for (let start = 0; start < list.length; ) {
      const end = Math.min(list.length, start + step);
      // JSON.stringify of a slice writes its elements as it would within the whole list.
      const text = JSON.stringify(list.slice(start, end));
      write(`${start > 0 ? "," : ""}${text.slice(1, -1)}`);
      step = Math.max(1, Math.floor(((end - start) * sliceChars) / text.length));
      start = end;
    }
    write("]");
  };
  const writeValue = (item: unknown, depth: number) => {
    if (
      item === null ||
      typeof item !== "object" ||
      typeof (item as { toJSON?: unknown }).toJSON === "function"
    ) {
      write(JSON.stringify(item));
    } else if (Array.isArray(item)) {
      writeList(item);
    } else if (depth > 1) {
      write(JSON.stringify(item));
    } else {
      write("{");
      let first = true;
      for (const key of Object.keys(item)) {
        const property = (item as Record<string, unknown>)[key];
        if (isOmitted(property)) continue;
        write(`${first ? "" : ","}${JSON.stringify(key)}:`);
        first = false;
        writeValue(property, depth + 1);
      }
      write("}");
    }
  };
  writeValue(value, 0);
  if (current !== "" || pieces.length === 0) pieces.push(current);
  return pieces;
}

/**
 * Buffers for large responses, reused: a fresh buffer of a few hundred KB is mapped anew (and
 * faulted in page by page) on every response. A buffer comes back only when its response has
 * closed, when neither the socket nor anything else still reads it. At most `keep` buffers of at
 * most `largestKept` bytes are kept; a rare huge answer's buffer is left to the garbage collector.
 */
export class ResponseBuffers {
  private readonly free: Buffer[] = [];

  constructor(
    private readonly keep = 8,
    private readonly largestKept = 8 * 1024 * 1024,
  ) {}

  take(bytes: number): Buffer {
    const index = this.free.findIndex((buffer) => buffer.length >= bytes);
    if (index >= 0) return this.free.splice(index, 1)[0] as Buffer;
    // Powers of two from 256 KiB, so that a buffer serves the next responses of similar size.
    return Buffer.allocUnsafeSlow(2 ** Math.max(18, Math.ceil(Math.log2(bytes))));
  }

  give(buffer: Buffer): void {
    if (this.free.length < this.keep && buffer.length <= this.largestKept) this.free.push(buffer);
  }
}

/**
 * The JSON text of `value` as the bytes to send: one buffer of the exact length, taken from
 * `buffers` when the text is large (pieced together, see `jsonPieces`). `release`, present only
 * then, gives the buffer back; call it once the bytes have been written (the response closed).
 */
export function jsonBody(
  value: unknown,
  buffers: ResponseBuffers,
): { bytes: Buffer; release?: () => void } {
  const pieces = jsonPieces(value);
  if (pieces.length === 1) return { bytes: Buffer.from(pieces[0] as string) };
  let length = 0;
  for (const piece of pieces) length += Buffer.byteLength(piece);
  const buffer = buffers.take(length);
  let offset = 0;
  for (const piece of pieces) offset += buffer.write(piece, offset);
  return { bytes: buffer.subarray(0, length), release: () => buffers.give(buffer) };
}
