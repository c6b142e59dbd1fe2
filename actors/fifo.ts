/**
 * A first-in, first-out queue with O(1) `shift`, for queues that may grow long (an
 * application far behind its messages): `Array.prototype.shift` moves every element.
 *
 * @module
 */

/**
 * A FIFO queue.
 *
 * @example
 * ```ts
 * import { Fifo } from "./fifo.ts";
 *
 * const q = new Fifo<number>();
 * q.push(1);
 * q.push(2);
 * console.log(q.shift(), q.length); // 1 1
 * ```
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** How many items are queued. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Adds an item at the back. */
  push(item: T): void {
    this.#items.push(item);
  }

  /** Removes and returns the front item, or `undefined` when empty. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    // Reclaim the consumed front once it is most of the array.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** The item `i` places from the front (0: the front), or `undefined` past the back. */
  at(i: number): T | undefined {
    return this.#head + i < this.#items.length ? this.#items[this.#head + i] : undefined;
  }

  /** The front item without removing it, or `undefined` when empty. */
  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  /** Replaces the front item (the queue must not be empty), e.g. with its unread rest. */
  replaceFront(item: T): void {
    this.#items[this.#head] = item;
  }

  /** Removes every item and returns them in order. */
  drain(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.clear();
    return items;
  }

  /** Removes every item. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
