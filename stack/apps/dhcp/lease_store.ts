/**
 * Where a DHCP server keeps its leases so that a restart (or a `kill -9`)
 * loses none it acknowledged: {@link MemoryLeaseStore} for the lab and
 * tests, {@link FileLeaseStore} for `tapir run`.
 *
 * The file is a journal of JSON lines, one per change, as Kea's memfile
 * is a CSV journal: the server appends the record (`write`: from then on a
 * `kill -9` cannot lose it) and has it synced to disk (`fdatasync`) before
 * the ACK leaves, so an acknowledged lease survives a power cut too. The
 * sync is a group commit: the ACKs of one burst wait for one `fdatasync`
 * ({@link LeaseStore.sync}), as databases commit a group of transactions.
 * When the journal has grown to twice the live leases it is compacted: the
 * live set goes to a temporary file, which is synced and renamed over the
 * journal (a rename is atomic), as Kea's lease file cleanup and dnsmasq's
 * rewrite do. A line cut short by a crash in the
 * middle of an append was never synced and never acknowledged; reading
 * skips it.
 *
 * @module
 */

import type { Clock, Timer } from "../../clock.ts";

/** Replies held for one lease-store sync at most (a group commit's size). */
export const GROUP_COMMIT_MAX = 16;

/**
 * Replies that announce leases wait here until the store has synced them:
 * one sync for a burst (the clock's next turn), or at once when
 * {@link GROUP_COMMIT_MAX} wait, so the bursts a client's socket buffer
 * must take stay small (perfdhcp has one for all its clients). A sync on
 * Deno's blocking pool measured slower: its completion waits for the link
 * driver to yield, so the groups got smaller, not larger.
 */
export class GroupCommit<R> {
  #held: R[] = [];
  #timer: Timer | null = null;

  constructor(
    readonly clock: Clock,
    readonly store: LeaseStore,
    /** Send one reply whose leases are on disk. */
    readonly send: (r: R) => void,
    /** `n` replies dropped because the sync failed. */
    readonly failed: (n: number) => void,
  ) {}

  /** Hold `r` until the next sync. */
  hold(r: R): void {
    this.#held.push(r);
    if (this.#held.length >= GROUP_COMMIT_MAX) this.flush();
    else this.#timer ??= this.clock.schedule(0, () => this.flush());
  }

  /** Sync now and send what waited. */
  flush(): void {
    this.#timer?.cancel();
    this.#timer = null;
    const held = this.#held;
    if (held.length === 0) return;
    this.#held = [];
    try {
      this.store.sync();
    } catch {
      this.failed(held.length);
      return;
    }
    for (const r of held) this.send(r);
  }
}

/** One lease as it is kept on disk (addresses and MACs as text, times in wall-clock ms). */
export interface LeaseRecord {
  /** Dotted IPv4 address; for DHCPv6 an IPv6 address, or a delegated prefix as `prefix/len`. */
  address: string;
  /** `aa:bb:cc:dd:ee:ff` (DHCPv6: from a DUID-LL/LLT, else empty). */
  mac: string;
  /** Client identifier (option 61; DHCPv6: the DUID) as colon-separated hex, or null. */
  clientId: string | null;
  /** The client's hostname (DHCPv4 option 12; DHCPv6: the first label of its Client FQDN, option 39), or null. */
  hostname: string | null;
  /** Unix time in ms when the lease ends (a declined address: when it may be used again). */
  expires: number;
  /** `bound`: held by the client; `released`: given back (RELEASE); `declined`: in use by someone else (DECLINE). */
  state: "bound" | "released" | "declined";
  /** DHCPv6: the IA's IAID. */
  iaid?: number;
  /** DHCPv6: an address (`na`, IA_NA) or a delegated prefix (`pd`, IA_PD). */
  ia?: "na" | "pd";
  /** DHCPv6 prefix delegation: the requesting router's link-local address (the route's next hop). */
  via?: string;
}

/**
 * True when `s` is a hostname a lease may be named by in DNS: one label of
 * letters, digits and inner hyphens, at most 63 (RFC 952 as RFC 1123 §2.1
 * relaxed it), as dnsmasq's `legal_hostname` takes.
 *
 * @param s the name a client sent
 * @returns whether lease names may use it
 * @example
 * ```ts
 * import { isLeaseHostname } from "./lease_store.ts";
 * console.assert(isLeaseHostname("laptop-2"));
 * console.assert(!isLeaseHostname("laptop.lan") && !isLeaseHostname("-x"));
 * ```
 */
export function isLeaseHostname(s: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(s);
}

/** A lease store: what the server read at start, and a durable write per change. */
export interface LeaseStore {
  /** The records to start from, the newest per address. */
  load(): LeaseRecord[];
  /**
   * Write `rec` (the newest state of its address) where a crash of the
   * process cannot lose it; throws on failure. `live` lists every record
   * (for a compaction), `liveCount` says how many there are without
   * building that list.
   */
  commit(rec: LeaseRecord, live: () => LeaseRecord[], liveCount?: number): void;
  /** Make every commit so far durable on disk; throws on failure. */
  sync(): void;
  close(): void;
}

/** Leases in memory (lost with the process): the lab, and tests that restart a server on it. */
export class MemoryLeaseStore implements LeaseStore {
  readonly records: Map<string, LeaseRecord> = new Map();
  load(): LeaseRecord[] {
    return [...this.records.values()];
  }
  commit(rec: LeaseRecord): void {
    this.records.set(rec.address, { ...rec });
  }
  sync(): void {}
  close(): void {}
}

/** Parse journal text: the newest record per address; malformed lines counted, not fatal. */
export function parseLeaseJournal(text: string): { records: LeaseRecord[]; badLines: number } {
  const byAddr = new Map<string, LeaseRecord>();
  let badLines = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      badLines++;
      continue;
    }
    if (!isRecord(r)) {
      badLines++;
      continue;
    }
    byAddr.set(r.address, r);
  }
  return { records: [...byAddr.values()], badLines };
}

function isRecord(r: unknown): r is LeaseRecord {
  if (r === null || typeof r !== "object") return false;
  const o = r as Record<string, unknown>;
  return typeof o.address === "string" && typeof o.mac === "string" &&
    (o.clientId === null || typeof o.clientId === "string") &&
    (o.hostname === null || typeof o.hostname === "string") &&
    typeof o.expires === "number" &&
    (o.state === "bound" || o.state === "released" || o.state === "declined") &&
    (o.iaid === undefined || typeof o.iaid === "number") &&
    (o.ia === undefined || o.ia === "na" || o.ia === "pd") &&
    (o.via === undefined || typeof o.via === "string");
}

const enc = new TextEncoder();

/** Leases in a journal file (see the module doc). */
export class FileLeaseStore implements LeaseStore {
  #file: Deno.FsFile | null = null;
  #lines = 0;
  /** Appends not yet synced. */
  #unsynced = false;
  /** Lines of the file that could not be read at start (a torn last append). */
  badLines = 0;

  constructor(readonly path: string) {}

  load(): LeaseRecord[] {
    let text = "";
    try {
      text = Deno.readTextFileSync(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const { records, badLines } = parseLeaseJournal(text);
    this.badLines = badLines;
    // Start from a compacted file: the torn line (if any) is gone, and appends start clean.
    this.#rewrite(records);
    return records;
  }

  commit(rec: LeaseRecord, live: () => LeaseRecord[], liveCount?: number): void {
    if (this.#file === null) this.#rewrite([]);
    const f = this.#file!;
    const line = enc.encode(JSON.stringify(rec) + "\n");
    let n = 0;
    while (n < line.length) n += f.writeSync(line.subarray(n));
    this.#unsynced = true;
    this.#lines++;
    // The list of live records is built only when the journal is due for compaction. It is
    // the server's tables before `rec` lands in them: `rec` replaces its address's record.
    if (this.#lines > 2 * (liveCount ?? live().length) + 64) {
      const all = live().filter((r) => r.address !== rec.address);
      all.push(rec);
      this.#rewrite(all);
    }
  }

  sync(): void {
    if (!this.#unsynced || this.#file === null) return;
    this.#file.syncDataSync();
    this.#unsynced = false;
  }

  /** Write `records` to a temporary file, sync it, rename it over the journal, reopen for appends. */
  #rewrite(records: LeaseRecord[]): void {
    const dir = this.path.includes("/") ? this.path.slice(0, this.path.lastIndexOf("/")) : ".";
    Deno.mkdirSync(dir || "/", { recursive: true });
    const tmp = `${this.path}.tmp`;
    const body = enc.encode(records.map((r) => JSON.stringify(r) + "\n").join(""));
    const t = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode: 0o644 });
    try {
      let n = 0;
      while (n < body.length) n += t.writeSync(body.subarray(n));
      t.syncSync();
    } finally {
      t.close();
    }
    Deno.renameSync(tmp, this.path);
    try {
      // The rename itself is durable once the directory is synced.
      const d = Deno.openSync(dir || "/", { read: true });
      try {
        d.syncSync();
      } finally {
        d.close();
      }
    } catch {
      // Some file systems cannot sync a directory; the rename is still atomic.
    }
    this.#file?.close();
    this.#file = Deno.openSync(this.path, { append: true });
    this.#lines = records.length;
    // The new file holds every live record, synced.
    this.#unsynced = false;
  }

  close(): void {
    try {
      if (this.#unsynced) this.#file?.syncDataSync();
      this.#unsynced = false;
    } finally {
      this.#file?.close();
      this.#file = null;
    }
  }
}
