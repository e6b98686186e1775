/**
 * Maps key paths (`interface[1].addresses[0]`) to line:column in TOML text.
 *
 * smol-toml gives no positions for keys, so this scans text that smol-toml
 * has already accepted: table headers (`[a.b]`, `[[a]]` with the index of
 * each array-of-tables entry), dotted keys, inline tables and array
 * elements. Lookups fall back to the nearest enclosing path it knows.
 *
 * @module
 */

/** A 1-based line and column. */
export interface Position {
  line: number;
  column: number;
}

interface KeySeg {
  name: string;
  off: number;
}

const BARE = /[A-Za-z0-9_-]/;

/** Key path → position index of one TOML text. */
export class Locator {
  readonly #text: string;
  readonly #lineStarts: number[] = [0];
  readonly #map = new Map<string, Position>();
  readonly #aot = new Map<string, number>();
  #i = 0;

  /** @param text TOML text (expected to be valid; scanning stops quietly at anything odd) */
  constructor(text: string) {
    this.#text = text;
    for (let i = 0; i < text.length; i++) if (text[i] === "\n") this.#lineStarts.push(i + 1);
    try {
      this.#scan();
    } catch {
      // Best effort: keep what was found before the confusing part.
    }
  }

  /** Position of `path`, or of the nearest enclosing path that has one. */
  locate(path: string): Position | undefined {
    let p = path;
    for (;;) {
      const hit = this.#map.get(p);
      if (hit) return hit;
      if (p === "") return undefined;
      const m = /(\[\d+\]|\.[^.[\]]*|^[^.[\]]*)$/.exec(p);
      if (!m || m[0] === "") return undefined;
      p = p.slice(0, p.length - m[0].length);
    }
  }

  /** Exact lookup, without fallback. */
  exact(path: string): Position | undefined {
    return this.#map.get(path);
  }

  #pos(off: number): Position {
    let lo = 0, hi = this.#lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#lineStarts[mid]! <= off) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: off - this.#lineStarts[lo]! + 1 };
  }

  #rec(path: string, off: number): void {
    if (!this.#map.has(path)) this.#map.set(path, this.#pos(off));
  }

  #skipSpace(newlines: boolean): void {
    const t = this.#text;
    while (this.#i < t.length) {
      const c = t[this.#i]!;
      if (c === " " || c === "\t" || c === "\r") this.#i++;
      else if (c === "\n" && newlines) this.#i++;
      else if (c === "#") {
        while (this.#i < t.length && t[this.#i] !== "\n") this.#i++;
      } else break;
    }
  }

  #scan(): void {
    const t = this.#text;
    let prefix = "";
    for (;;) {
      this.#skipSpace(true);
      if (this.#i >= t.length) return;
      if (t[this.#i] === "[") {
        const start = this.#i;
        const double = t[this.#i + 1] === "[";
        this.#i += double ? 2 : 1;
        this.#skipSpace(false);
        const segs = this.#key();
        let p = "";
        for (let k = 0; k < segs.length; k++) {
          const s = segs[k]!;
          p = join(p, s.name);
          const last = k === segs.length - 1;
          if (last && double) {
            const n = this.#aot.get(p) ?? 0;
            this.#rec(p, s.off);
            this.#aot.set(p, n + 1);
            p = `${p}[${n}]`;
            this.#rec(p, start);
          } else {
            const n = this.#aot.get(p);
            if (n !== undefined) p = `${p}[${n - 1}]`;
            this.#rec(p, last ? start : s.off);
          }
        }
        while (this.#i < t.length && t[this.#i] !== "\n") {
          if (t[this.#i] === "#") break;
          this.#i++;
        }
        prefix = p;
      } else {
        this.#keyValue(prefix);
      }
    }
  }

  #key(): KeySeg[] {
    const t = this.#text;
    const segs: KeySeg[] = [];
    for (;;) {
      this.#skipSpace(false);
      const off = this.#i;
      const c = t[this.#i];
      let name = "";
      if (c === '"' || c === "'") {
        const end = this.#skipString();
        name = t.slice(off + 1, end - 1);
      } else {
        while (this.#i < t.length && BARE.test(t[this.#i]!)) this.#i++;
        name = t.slice(off, this.#i);
        if (name === "") throw new Error("bad key");
      }
      segs.push({ name, off });
      this.#skipSpace(false);
      if (t[this.#i] === ".") {
        this.#i++;
        continue;
      }
      return segs;
    }
  }

  #keyValue(base: string): void {
    const segs = this.#key();
    let p = base;
    for (const s of segs) {
      p = join(p, s.name);
      this.#rec(p, s.off);
    }
    this.#skipSpace(false);
    if (this.#text[this.#i] !== "=") throw new Error("expected =");
    this.#i++;
    this.#skipSpace(false);
    this.#value(p);
  }

  #value(path: string): void {
    const t = this.#text;
    const c = t[this.#i];
    if (c === '"' || c === "'") {
      this.#skipString();
    } else if (c === "[") {
      this.#i++;
      let idx = 0;
      for (;;) {
        this.#skipSpace(true);
        if (this.#i >= t.length) throw new Error("eof");
        if (t[this.#i] === "]") {
          this.#i++;
          return;
        }
        const el = `${path}[${idx}]`;
        this.#rec(el, this.#i);
        this.#value(el);
        idx++;
        this.#skipSpace(true);
        if (t[this.#i] === ",") this.#i++;
      }
    } else if (c === "{") {
      this.#i++;
      for (;;) {
        this.#skipSpace(true);
        if (this.#i >= t.length) throw new Error("eof");
        if (t[this.#i] === "}") {
          this.#i++;
          return;
        }
        this.#keyValue(path);
        this.#skipSpace(true);
        if (t[this.#i] === ",") this.#i++;
      }
    } else {
      const start = this.#i;
      while (this.#i < t.length && !",]}\n\r#".includes(t[this.#i]!)) this.#i++;
      if (this.#i === start) throw new Error("empty value");
    }
  }

  /** Skips a string of any of the four kinds at #i; returns the offset after it. */
  #skipString(): number {
    const t = this.#text;
    const q = t[this.#i]!;
    const escapes = q === '"';
    if (t.startsWith(q.repeat(3), this.#i)) {
      this.#i += 3;
      for (;;) {
        if (this.#i >= t.length) throw new Error("eof");
        if (escapes && t[this.#i] === "\\") {
          this.#i += 2;
          continue;
        }
        if (t.startsWith(q.repeat(3), this.#i)) {
          this.#i += 3;
          // Up to two more quotes may close the content (`""""` ends with one quote inside).
          for (let k = 0; k < 2 && t[this.#i] === q; k++) this.#i++;
          return this.#i;
        }
        this.#i++;
      }
    }
    this.#i++;
    for (;;) {
      if (this.#i >= t.length || t[this.#i] === "\n") throw new Error("unterminated");
      if (escapes && t[this.#i] === "\\") {
        this.#i += 2;
        continue;
      }
      if (t[this.#i] === q) {
        this.#i++;
        return this.#i;
      }
      this.#i++;
    }
  }
}

function join(base: string, key: string): string {
  return base === "" ? key : `${base}.${key}`;
}
