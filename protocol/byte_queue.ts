/**
 * The bytes fed to a receiver and not parsed yet, kept as the fed chunks themselves:
 * consuming bytes moves a cursor instead of copying, so a payload can be handed out as
 * a view into the chunk it arrived in.
 *
 * @module
 */

const EMPTY = new Uint8Array(0);

/**
 * A queue of fed chunks with a read cursor: the unread bytes are {@link ByteQueue.front}
 * from {@link ByteQueue.offset}, then the chunks after it. Consumed chunks are dropped
 * (amortized, without shifting the array on every chunk) so they can be collected.
 *
 * @example
 * ```ts
 * import { ByteQueue } from "./byte_queue.ts";
 *
 * const queue = new ByteQueue();
 * queue.push(new Uint8Array([1, 2]));
 * queue.push(new Uint8Array([3, 4, 5]));
 * const head = new Uint8Array(3);
 * console.log(queue.peek(head), head); // 3 Uint8Array(3) [ 1, 2, 3 ]
 * queue.skip(3);
 * console.log(queue.size, queue.front[queue.offset]); // 2 4
 * console.log(queue.takeAll()); // [ Uint8Array(2) [ 4, 5 ] ]
 * ```
 */
export class ByteQueue {
  // Unread bytes: #chunks[#head] from #offset, then the following chunks.
  #chunks: Uint8Array[] = [];
  #head = 0;
  #offset = 0;
  #size = 0;

  /** Unread bytes in the queue. */
  get size(): number {
    return this.#size;
  }

  /** The chunk holding the next unread byte; only meaningful while `size > 0`. */
  get front(): Uint8Array {
    return this.#chunks[this.#head];
  }

  /** Where the unread bytes of {@link ByteQueue.front} start. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Appends a chunk; the queue keeps the chunk itself, not a copy.
   *
   * @param chunk bytes to queue, not empty
   */
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }

  /**
   * Copies up to `target.length` unread bytes into `target` without consuming them.
   *
   * @returns how many bytes were copied
   */
  peek(target: Uint8Array): number {
    let copied = 0;
    let start = this.#offset;
    // Used for frame headers, at most 14 bytes: a plain loop beats creating views.
    for (let index = this.#head; index < this.#chunks.length; index++) {
      const chunk = this.#chunks[index];
      while (start < chunk.length && copied < target.length) target[copied++] = chunk[start++];
      if (copied === target.length) break;
      start = 0;
    }
    return copied;
  }

  /**
   * Consumes `count` unread bytes (at most {@link ByteQueue.size}), dropping the chunks
   * used up.
   */
  skip(count: number): void {
    this.#size -= count;
    while (count > 0) {
      const available = this.#chunks[this.#head].length - this.#offset;
      if (count < available) {
        this.#offset += count;
        return;
      }
      count -= available;
      this.#chunks[this.#head] = EMPTY; // let the used-up chunk be collected
      this.#offset = 0;
      this.#head++;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      } else if (this.#head >= 32 && this.#head * 2 >= this.#chunks.length) {
        // Drop consumed entries now and then; amortized, without shifting on every chunk.
        this.#chunks.splice(0, this.#head);
        this.#head = 0;
      }
    }
  }

  /**
   * Hands over the unread bytes (views into the chunks, in order) and empties the queue.
   *
   * @returns the unread bytes, `[]` when there are none
   */
  takeAll(): Uint8Array[] {
    if (this.#size === 0) return [];
    const rest = this.#chunks.slice(this.#head);
    rest[0] = rest[0].subarray(this.#offset);
    this.clear();
    return rest;
  }

  /** Forgets every queued byte. */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#offset = 0;
    this.#size = 0;
  }
}
