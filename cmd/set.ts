/**
 * `tapir set add|del|list NAME [ENTRY] [--timeout T]`: change or show a
 * named set (`[firewall.sets.NAME]`) of a running tapir through its
 * control socket, as `ipset add|del|list` does for the kernel — the
 * fail2ban use: `tapir set add banned 192.0.2.7 --timeout 1h` blocks the
 * address from the next packet on. Exit 1 when the request was refused (no
 * such set, a bad or misfit entry, a full set, `del` of an entry that is
 * not there) or no tapir answered.
 *
 * @module
 */
import { parseDuration } from "../config/duration.ts";
import {
  defaultControlPath,
  queryControl,
  type SetChangeAnswer,
  type SetListAnswer,
} from "./control.ts";

/** Options of {@link setCommand}. */
export interface SetOptions {
  control?: string;
  hostname?: string;
  json?: boolean;
  /** `--timeout`: seconds (`600`) or a duration (`10m`); 0: for ever. */
  timeout?: string;
}

/** `--timeout` in ms: a bare number is seconds (as ipset's), else a duration. */
export function parseSetTimeout(text: string): number {
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  return parseDuration(text);
}

function familyText(f: number): string {
  return f === 4 ? "inet" : f === 6 ? "inet6" : "inet,inet6";
}

/** `ipset list`-style text of a set. */
export function formatSetList(a: SetListAnswer): string {
  const lines = [
    `Name: ${a.name}`,
    `Type: ${a.type}`,
    `Family: ${familyText(a.family)}`,
    `Timeout: ${a.timeout > 0 ? `${a.timeout}s` : "none"}`,
    `Max entries: ${a.max_entries}`,
    `Number of entries: ${a.size}`,
    "Members:",
    ...a.entries.map((e) => e.timeout === null ? e.entry : `${e.entry} timeout ${e.timeout}`),
  ];
  return lines.join("\n") + "\n";
}

/** Run `tapir set OP NAME [ENTRY]`; the exit code. */
export async function setCommand(
  op: string,
  name: string | undefined,
  entry: string | undefined,
  o: SetOptions,
): Promise<number> {
  if (op !== "add" && op !== "del" && op !== "list") {
    console.error(`tapir set: unknown "${op}"; use add, del or list`);
    return 2;
  }
  if (op !== "list" && (name === undefined || entry === undefined)) {
    console.error(`tapir set ${op}: needs NAME and ENTRY (e.g. tapir set ${op} banned 192.0.2.7)`);
    return 2;
  }
  if (op === "list" && entry !== undefined) {
    console.error(`tapir set list: takes at most a NAME`);
    return 2;
  }
  if (o.timeout !== undefined && op !== "add") {
    console.error(`tapir set ${op}: --timeout goes with add only`);
    return 2;
  }
  let request = ["set", op, ...(name === undefined ? [] : [name])];
  if (entry !== undefined) request.push(entry);
  if (o.timeout !== undefined) {
    let ms: number;
    try {
      ms = parseSetTimeout(o.timeout);
    } catch (e) {
      console.error(`tapir set: --timeout: ${e instanceof Error ? e.message : e}`);
      return 2;
    }
    request = [...request, String(ms)];
  }
  if (request.some((w) => /\s/.test(w) || w === "")) {
    console.error(`tapir set: NAME and ENTRY cannot hold spaces`);
    return 2;
  }
  const path = o.control ?? defaultControlPath(o.hostname ?? "tapir");
  let answer: unknown;
  try {
    answer = await queryControl(path, request.join(" "));
  } catch (e) {
    console.error(
      `tapir set: cannot reach a running tapir at ${path} (${
        e instanceof Error ? e.message : e
      }); pass --control PATH or --hostname NAME`,
    );
    return 1;
  }
  const error = (answer as { error?: unknown }).error;
  if (o.json) console.log(JSON.stringify(answer, null, 2));
  if (typeof error === "string") {
    if (!o.json) console.error(`tapir set: ${error}`);
    return 1;
  }
  if (op === "list") {
    if (o.json) return 0;
    if (name !== undefined) {
      console.log(formatSetList(answer as SetListAnswer).trimEnd());
      return 0;
    }
    const sets = (answer as { sets: { name: string; type: string; size: number }[] }).sets;
    if (sets.length === 0) console.log("no sets configured");
    for (const s of sets) console.log(`${s.name}\t${s.type}\t${s.size} entries`);
    return 0;
  }
  const a = answer as SetChangeAnswer;
  if (op === "del" && !a.changed) {
    if (!o.json) console.error(`tapir set: ${a.entry} is not in set ${a.set}`);
    return 1;
  }
  if (!o.json) {
    console.log(
      op === "del"
        ? `deleted ${a.entry} from ${a.set} (${a.size} entries)`
        : a.changed
        ? `added ${a.entry} to ${a.set} (${a.size} entries)`
        : `${a.entry} was in ${a.set}: its timeout starts again`,
    );
  }
  return 0;
}
