/**
 * The demo's chat rooms, independent of how members connect: a member is a WebSocket
 * message handle in text mode (from `wsAttachServer` on a raw TCP stream, or from a
 * `Deno.serve` upgrade), and {@link ChatRooms.serve} runs its whole life: welcome, join,
 * every text message broadcast to the room, leave.
 *
 * A room spans processes through a {@link Hub}: each process delivers to its own members
 * directly (so chat goes on when the broker is away) and publishes to the hub, with its
 * origin, what the other processes must see; what comes back from the hub with its own
 * origin is dropped, so nobody gets a message twice. One hub subscription per room per
 * process, taken when the room's first member arrives here and dropped with its last.
 *
 * Who is online across processes: when a process opens a room it asks ("who"), the others
 * answer with their members ("here"), and every process repeats its "here" every
 * {@link ROSTER_INTERVAL_MS} (by default); a process not heard from for three intervals (it crashed)
 * is taken off the list, its members announced as gone.
 *
 * @module
 */

import {
  type Handle,
  hclose,
  isDillError,
  mrecvText,
  msend,
  now,
  wsDone,
  wsStatus,
} from "../mod.ts";
import { type Hub, type HubStatus, type HubSubscription, LocalHub } from "./hub.ts";
import { TokenBucket } from "./token_bucket.ts";

/** Room names (and so hub topics): lowercase letters, digits and dashes. */
export const ROOM_NAME = /^[a-z0-9-]{1,32}$/;
/** Why a room name is refused. */
export const BAD_ROOM = "room names are a-z, 0-9 and -, at most 32";
/** Bytes; larger chat messages are refused with close 1009 (whatever the transport). */
export const MAX_CHAT_MESSAGE = 4_096;
/** The room of a client that names none. */
export const DEFAULT_ROOM = "lobby";
/** Default bound on events queued for one member; a member this far behind is dropped. */
export const DEFAULT_MAX_OUTBOX = 256;
/**
 * Default bound on the characters (UTF-16 code units, about what the strings hold in
 * memory) of the events queued behind the one being sent to a member: a chat text of
 * control characters grows six-fold in JSON, so counting events alone would let 256 of
 * them pin 6 MB per member.
 */
export const DEFAULT_MAX_OUTBOX_CHARS = 256 * 1024;
/**
 * A member silent this long gets a ping; one that does not answer within the library's
 * `pongTimeout` (10 s) is gone: a client that vanished without closing (a lost network)
 * would otherwise hold its connection until a send to it timed out, never in a quiet room.
 */
export const PING_INTERVAL_MS = 30_000;
/**
 * Default characters a second (and at once) one member may send to its room, counted as
 * the JSON each member gets: a quarter of a member's outbox, so that one burst cannot fill
 * the outboxes of members who read at the pace of the network.
 */
export const DEFAULT_SEND_RATE = DEFAULT_MAX_OUTBOX_CHARS / 4;
/** The least a message costs against `sendRate`: a flood of tiny messages is bounded too. */
const MIN_MESSAGE_COST = 256;
/** How often each process tells the others who is in its rooms. */
export const ROSTER_INTERVAL_MS = 10_000;

const SEND_TIMEOUT_MS = 2_000; // a slow client may hold up one send this long
const CLOSE_TIMEOUT_MS = 1_000;
const MAX_NAME = 64; // characters of a member name from another process
const MAX_TEXT = MAX_CHAT_MESSAGE; // characters of a chat text from another process
const MAX_ROSTER = 10_000; // names in one "here" from another process
/**
 * Roster changes told one event per name up to this many; more come as one notice (a
 * room opened elsewhere with hundreds in it must not overflow every member's outbox).
 */
const MAX_ROSTER_EVENTS = 16;
/**
 * Answers to "who" per room: up to this many at once (processes opening the room
 * together each get theirs at once)...
 */
const WHO_ANSWER_BURST = 8;
/** ...then one per this many ms: a flood of "who" cannot make us flood the bus. */
const WHO_ANSWER_EVERY_MS = 250;
/** Names a roster notice lists before "and N more". */
const NOTICE_NAMES = 10;

/** Events every member of a room sees, wherever it is connected. */
type SharedEvent =
  | { kind: "join" | "leave"; name: string }
  | { kind: "chat"; from: string; text: string };

/** What the server sends to chat clients, as JSON text messages. */
export type ChatEvent =
  | { kind: "welcome"; name: string; room: string; online: string[] }
  | SharedEvent
  | { kind: "notice"; text: string; link?: "down" | "up" };

/** What the rooms of different processes tell each other through the hub. */
type WireEvent =
  | SharedEvent
  | { kind: "who" }
  | { kind: "here"; names: string[] };

/** Options of {@link ChatRooms}. */
export interface ChatRoomsOptions {
  /** What carries messages between processes. Default: a {@link LocalHub} (this process). */
  hub?: Hub;
  /** This process's name, appended to guest names (`guest-3@p2`) so they are unique. */
  node?: string;
  /** Events queued per member before it is dropped. Default {@link DEFAULT_MAX_OUTBOX}. */
  maxOutbox?: number;
  /**
   * Characters of events queued per member before it is dropped; an event that finds the
   * outbox empty is always taken, however large (a welcome with a long roster). Default
   * {@link DEFAULT_MAX_OUTBOX_CHARS}.
   */
  maxOutboxChars?: number;
  /**
   * Characters (as the room sends them out, in JSON) one member may send to its room per
   * second, and at once; a member sending faster is read more slowly. Default
   * {@link DEFAULT_SEND_RATE}.
   */
  sendRate?: number;
  /** How often this process tells the others who is here. Default {@link ROSTER_INTERVAL_MS}. */
  rosterIntervalMs?: number;
  /** Where the one-line events go. */
  log?: (line: string) => void;
}

/** One member connected to this process. */
interface Member {
  readonly name: string;
  readonly peer: string;
  readonly handle: Handle;
  readonly outbox: string[];
  /** Sum of the lengths of the strings in `outbox`. */
  outboxChars: number;
  writer: Promise<void> | null;
  /** What this member may still send to its room, in characters (see `sendRate`). */
  credit: TokenBucket;
  /** Ends the wait for credit early (the member is dropped, the server stops); set meanwhile. */
  wake: (() => void) | null;
  gone: boolean;
}

/** Members of another process in a room, and when that process last spoke. */
interface RemoteRoster {
  names: Set<string>;
  seen: number;
}

/** A room as this process sees it. */
interface Room {
  readonly name: string;
  readonly members: Set<Member>;
  readonly remote: Map<string, RemoteRoster>;
  subscription: HubSubscription | null;
  /** Answers to "who" this process may give (refilled over time, see #answerWho). */
  whoCredits: TokenBucket;
  /** A "who" that came too soon after the last answer is answered when this fires. */
  whoTimer: ReturnType<typeof setTimeout> | undefined;
}

/** One client session handed to {@link ChatRooms.serve}. */
export interface ChatSession {
  /** A WebSocket message handle in text mode. */
  handle: Handle;
  /** The room to join (check it with {@link ROOM_NAME}). */
  room: string;
  /** Who it is, for the log (an address). */
  peer: string;
  /** Ends the WebSocket the transport's way; called once the member has left. */
  close: () => Promise<void>;
}

/**
 * All chat rooms of one process.
 *
 * @example
 * ```ts ignore
 * import { ChatRooms } from "./chat_rooms.ts";
 *
 * const rooms = new ChatRooms({ log: console.log });
 * // for each WebSocket in text mode:
 * // await rooms.serve({ handle, room: "lobby", peer: "1.2.3.4:5", close: () => ... });
 * rooms.goAway();
 * await rooms.close();
 * ```
 */
export class ChatRooms {
  /** Marks this process's publications, so that it drops them when the hub returns them. */
  readonly origin: string = crypto.randomUUID().slice(0, 8);
  readonly #hub: Hub;
  readonly #node: string | undefined;
  readonly #maxOutbox: number;
  readonly #maxOutboxChars: number;
  readonly #sendRate: number;
  readonly #log: (line: string) => void;
  readonly #rooms = new Map<string, Room>();
  readonly #roster: ReturnType<typeof setInterval>;
  readonly #rosterIntervalMs: number;
  #guests = 0;
  #closing = false;

  constructor(options: ChatRoomsOptions = {}) {
    this.#maxOutbox = positive("maxOutbox", options.maxOutbox ?? DEFAULT_MAX_OUTBOX);
    this.#maxOutboxChars = positive(
      "maxOutboxChars",
      options.maxOutboxChars ?? DEFAULT_MAX_OUTBOX_CHARS,
    );
    this.#sendRate = positive("sendRate", options.sendRate ?? DEFAULT_SEND_RATE);
    this.#rosterIntervalMs = positive(
      "rosterIntervalMs",
      options.rosterIntervalMs ?? ROSTER_INTERVAL_MS,
    );
    this.#hub = options.hub ?? new LocalHub();
    this.#node = options.node;
    this.#log = options.log ?? (() => {});
    this.#hub.watch((status) => this.#onHubStatus(status));
    this.#roster = setInterval(() => this.#announce(), this.#rosterIntervalMs);
  }

  /** The hub's kind, for logs. */
  get hubKind(): string {
    return this.#hub.kind;
  }

  /** Runs one member's chat life; resolves when it has left and its WebSocket is closed. */
  async serve(session: ChatSession): Promise<void> {
    const room = await this.#enter(session.room);
    const name = this.#node ? `guest-${++this.#guests}@${this.#node}` : `guest-${++this.#guests}`;
    const member: Member = {
      name,
      peer: session.peer,
      handle: session.handle,
      outbox: [],
      outboxChars: 0,
      writer: null,
      credit: new TokenBucket(this.#sendRate, this.#sendRate / 1000, now()),
      wake: null,
      gone: false,
    };
    room.members.add(member);
    this.#log(`${member.peer} joined ${room.name} as ${name}`);
    if (this.#closing) goAway(member);
    this.#send(member, { kind: "welcome", name, room: room.name, online: online(room) });
    this.#broadcast(room, { kind: "join", name }, member);
    let how = "left";
    try {
      for (;;) {
        const text = await mrecvText(member.handle, -1);
        const size = this.#broadcast(room, { kind: "chat", from: name, text });
        await this.#spend(member, size);
      }
    } catch (e) {
      // EPIPE: the client sent its close frame (or answered ours): the normal way out.
      const status = isDillError(e, "EPIPE") ? peerStatus(member.handle) : null;
      how = status
        ? `left (${[status.status, status.reason].join(" ").trim()})`
        : `dropped (${describe(e)})`;
      // A binary message (the other EPROTO, a broken frame, has already closed the
      // connection with its own status, and this fails): 1003, not a plain close.
      if (isDillError(e, "EPROTO")) {
        await wsDone(member.handle, 1003, "text messages only", now() + CLOSE_TIMEOUT_MS)
          .catch(() => {});
      }
    }
    room.members.delete(member);
    this.#log(`${member.peer} ${name} ${how}`);
    this.#broadcast(room, { kind: "leave", name });
    if (room.members.size === 0) this.#closeRoom(room);
    try {
      await session.close();
    } finally {
      member.gone = true;
      await member.writer; // fails at once now that the handle is closed
    }
  }

  /** Asks every member to leave (close 1001); later arrivals are asked at once. */
  goAway(): void {
    this.#closing = true;
    for (const room of this.#rooms.values()) for (const m of room.members) goAway(m);
  }

  /** Stops the roster timer and the hub. Call after every session has ended. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#roster);
    for (const room of [...this.#rooms.values()]) this.#closeRoom(room);
    await this.#hub.close();
  }

  /** The room, subscribed to the hub; a room new to this process asks who is there. */
  #open(name: string): Room {
    let room = this.#rooms.get(name);
    if (room) return room;
    room = {
      name,
      members: new Set(),
      remote: new Map(),
      subscription: null,
      whoCredits: new TokenBucket(WHO_ANSWER_BURST, 1 / WHO_ANSWER_EVERY_MS, Date.now()),
      whoTimer: undefined,
    };
    this.#rooms.set(name, room);
    const opened = room;
    room.subscription = this.#hub.subscribe(name, (message) => this.#fromHub(opened, message));
    this.#publish(room, { kind: "who" });
    return room;
  }

  /**
   * The room, once its hub subscription is confirmed: a welcome promises every message said
   * after it, in every process. A room whose last member left meanwhile is opened again.
   */
  async #enter(name: string): Promise<Room> {
    for (;;) {
      const room = this.#open(name);
      await room.subscription?.ready;
      if (this.#rooms.get(name) === room || this.#closing) return room;
    }
  }

  #closeRoom(room: Room): void {
    clearTimeout(room.whoTimer);
    room.subscription?.unsubscribe();
    room.subscription = null;
    if (this.#rooms.get(room.name) === room) this.#rooms.delete(room.name);
  }

  /**
   * Delivers to this process's members (but `except`), then to the other processes;
   * returns the characters each member gets.
   */
  #broadcast(room: Room, event: SharedEvent, except?: Member): number {
    const size = this.#deliver(room, event, except);
    this.#publish(room, event);
    return size;
  }

  /** Queues the event for the room's members (but `except`); returns its size in characters. */
  #deliver(room: Room, event: ChatEvent, except?: Member): number {
    // Serialized once: every member's outbox holds the same string.
    const json = JSON.stringify(event);
    for (const m of room.members) if (m !== except) this.#queue(m, json);
    return json.length;
  }

  #publish(room: Room, event: WireEvent): void {
    this.#hub.publish(room.name, JSON.stringify({ origin: this.origin, event }));
  }

  /** A message from the hub: ours come back and are dropped; the others are checked. */
  #fromHub(room: Room, message: string): void {
    const wire = parseWire(message);
    if (!wire) return this.#log(`hub: ignored a malformed message in ${room.name}`);
    if (wire.origin === this.origin || this.#rooms.get(room.name) !== room) return;
    const { origin, event } = wire;
    const roster = room.remote.get(origin) ?? { names: new Set<string>(), seen: 0 };
    room.remote.set(origin, roster);
    roster.seen = Date.now();
    switch (event.kind) {
      case "join":
        if (!isOnline(room, event.name)) this.#deliver(room, event);
        roster.names.add(event.name);
        return;
      case "leave":
        roster.names.delete(event.name);
        if (!isOnline(room, event.name)) this.#deliver(room, event);
        return;
      case "chat":
        this.#deliver(room, event);
        return;
      case "who":
        return this.#answerWho(room);
      case "here":
        return this.#replaceRoster(room, roster, new Set(event.names));
    }
  }

  /**
   * Tells the others who is here in answer to a "who", at most {@link WHO_ANSWER_BURST}
   * times at once and then one per {@link WHO_ANSWER_EVERY_MS}: a flood of "who" must not
   * make every process flood the bus with rosters. Those over the rate share one answer
   * given as soon as the rate allows.
   */
  #answerWho(room: Room): void {
    if (room.whoTimer !== undefined) return; // an answer is already due
    const answer = () => {
      room.whoTimer = undefined;
      if (room.members.size === 0 || this.#rooms.get(room.name) !== room) return;
      this.#publish(room, { kind: "here", names: localNames(room) });
    };
    // Over the rate, the credit this answer takes is the one that accrues meanwhile.
    const wait = room.whoCredits.take(1, Date.now());
    if (wait === 0) return answer();
    room.whoTimer = setTimeout(answer, wait);
  }

  /**
   * Takes a process's list of members; members are told who newly shows or no longer
   * shows: one event per name, or one notice when many changed at once.
   */
  #replaceRoster(room: Room, roster: RemoteRoster, names: Set<string>): void {
    const before = new Set(online(room));
    roster.names = names;
    const after = new Set(online(room));
    const joined = [...after].filter((name) => !before.has(name));
    const left = [...before].filter((name) => !after.has(name));
    if (joined.length + left.length <= MAX_ROSTER_EVENTS) {
      for (const name of joined) this.#deliver(room, { kind: "join", name });
      for (const name of left) this.#deliver(room, { kind: "leave", name });
      return;
    }
    const parts = [];
    if (joined.length > 0) parts.push(`${joined.length} joined: ${listNames(joined)}`);
    if (left.length > 0) parts.push(`${left.length} left: ${listNames(left)}`);
    this.#deliver(room, { kind: "notice", text: `On other servers, ${parts.join("; ")}.` });
  }

  /** Every interval: tell the others who is here, forget processes that went silent. */
  #announce(): void {
    const silentSince = Date.now() - 3 * this.#rosterIntervalMs;
    for (const room of this.#rooms.values()) {
      this.#publish(room, { kind: "here", names: localNames(room) });
      for (const [origin, roster] of room.remote) {
        if (roster.seen >= silentSince) continue;
        this.#log(`${room.name}: no word from ${origin} for a while; its members are gone`);
        this.#replaceRoster(room, roster, new Set());
        room.remote.delete(origin);
      }
    }
  }

  #onHubStatus(status: HubStatus): void {
    let text: string;
    if (status.state === "down") {
      this.#log(`hub (${this.#hub.kind}) down: ${status.reason}`);
      text = "Lost the link to the other servers: chat goes on with the people on this " +
        "server; what is said here waits (a bounded queue) for the link to come back.";
    } else {
      const lost = status.dropped > 0
        ? ` ${status.dropped} messages said here did not fit the queue and were lost.`
        : "";
      this.#log(
        `hub (${this.#hub.kind}) up after ${status.downMs} ms; ${status.dropped} publications dropped`,
      );
      text = `The link to the other servers is back after ${(status.downMs / 1000).toFixed(1)} s.` +
        `${lost} What was said on other servers meanwhile did not reach this one.`;
      for (const room of this.#rooms.values()) this.#publish(room, { kind: "who" });
    }
    const notice: ChatEvent = { kind: "notice", text, link: status.state };
    for (const room of this.#rooms.values()) this.#deliver(room, notice);
  }

  /**
   * Takes what a member's message costs from its credit (`sendRate` characters a second,
   * as much at once; at least `MIN_MESSAGE_COST` a message) and, when it is used up,
   * waits until it would be back above 0 before its next message is read: TCP then holds
   * the sender back. Without it, one member sending a burst made every other member's
   * outbox fill faster than the network drained it, and the room dropped readers that
   * kept up.
   */
  async #spend(member: Member, size: number): Promise<void> {
    const wait = member.credit.take(Math.max(MIN_MESSAGE_COST, size), now());
    if (wait === 0 || member.gone || this.#closing) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait);
      member.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    member.wake = null;
  }

  /** Queues one event for one member. */
  #send(member: Member, event: ChatEvent): void {
    this.#queue(member, JSON.stringify(event));
  }

  /**
   * Queues one serialized event; a member that falls `maxOutbox` events or
   * `maxOutboxChars` behind is dropped.
   */
  #queue(member: Member, json: string): void {
    if (member.gone) return;
    if (member.outbox.length >= this.#maxOutbox) {
      this.#log(`${member.peer} ${member.name} dropped: ${this.#maxOutbox} events behind`);
      return drop(member);
    }
    if (member.outbox.length > 0 && member.outboxChars + json.length > this.#maxOutboxChars) {
      this.#log(`${member.peer} ${member.name} dropped: ${this.#maxOutboxChars} characters behind`);
      return drop(member);
    }
    member.outbox.push(json);
    member.outboxChars += json.length;
    // The outbox is not empty, so #write awaits before it clears `writer` again.
    member.writer ??= this.#write(member);
  }

  async #write(member: Member): Promise<void> {
    try {
      while (member.outbox.length > 0 && !member.gone) {
        await msend(member.handle, member.outbox[0], now() + SEND_TIMEOUT_MS);
        if (member.gone) break; // dropped meanwhile: its outbox is already emptied
        member.outboxChars -= member.outbox.shift()!.length;
      }
    } catch (e) {
      if (!isDillError(e, "EPIPE") && !isDillError(e, "EBADF")) {
        this.#log(`${member.peer} ${member.name} dropped: ${describe(e)}`);
      }
      drop(member);
    } finally {
      member.writer = null;
    }
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, not ${value}`);
  }
  return value;
}

/** Names online in a room, here and elsewhere. */
function online(room: Room): string[] {
  const names = new Set(localNames(room));
  for (const roster of room.remote.values()) for (const n of roster.names) names.add(n);
  return [...names];
}

function isOnline(room: Room, name: string): boolean {
  return online(room).includes(name);
}

function localNames(room: Room): string[] {
  return [...room.members].map((m) => m.name);
}

function goAway(member: Member): void {
  member.wake?.(); // its next read then gets our close's answer
  wsDone(member.handle, 1001, "server shutting down", now() + CLOSE_TIMEOUT_MS).catch(() => {});
}

/** Cuts a member off; its receive loop fails and it leaves the usual way. */
function drop(member: Member): void {
  member.wake?.();
  member.gone = true;
  member.outbox.length = 0;
  member.outboxChars = 0;
  try {
    hclose(member.handle);
  } catch {
    // Already closed.
  }
}

/** A hub message from another process, checked field by field (bounded sizes). */
function parseWire(message: string): { origin: string; event: WireEvent } | null {
  let v: unknown;
  try {
    v = JSON.parse(message);
  } catch {
    return null;
  }
  if (!isRecord(v) || !isShortString(v.origin, 64) || !isRecord(v.event)) return null;
  const e = v.event;
  switch (e.kind) {
    case "join":
    case "leave":
      return isShortString(e.name, MAX_NAME)
        ? { origin: v.origin, event: { kind: e.kind, name: e.name } }
        : null;
    case "chat":
      return isShortString(e.from, MAX_NAME) && isShortString(e.text, MAX_TEXT)
        ? { origin: v.origin, event: { kind: "chat", from: e.from, text: e.text } }
        : null;
    case "who":
      return { origin: v.origin, event: { kind: "who" } };
    case "here":
      return Array.isArray(e.names) && e.names.length <= MAX_ROSTER &&
          e.names.every((n) => isShortString(n, MAX_NAME))
        ? { origin: v.origin, event: { kind: "here", names: e.names as string[] } }
        : null;
  }
  return null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isShortString(v: unknown, max: number): v is string {
  return typeof v === "string" && v.length <= max;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** How the peer closed, or `null` when it has not (wsStatus throws EAGAIN then). */
function peerStatus(h: Handle): { status: number; reason: string } | null {
  try {
    return wsStatus(h);
  } catch {
    return null;
  }
}

/** The first {@link NOTICE_NAMES} names, then how many more. */
function listNames(names: string[]): string {
  const shown = names.slice(0, NOTICE_NAMES).join(", ");
  return names.length > NOTICE_NAMES ? `${shown} and ${names.length - NOTICE_NAMES} more` : shown;
}
