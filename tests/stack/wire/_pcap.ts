/**
 * Helpers for the tshark cross-checks: a classic pcap writer and a tshark
 * runner (the same approach as tshark_test.ts).
 *
 * @module
 */
import assert from "node:assert/strict";

/** A classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET). */
export function pcap(frames: Uint8Array[]): Uint8Array {
  const size = 24 + frames.reduce((n, f) => n + 16 + f.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true); // magic
  v.setUint16(4, 2, true); // version 2.4
  v.setUint16(6, 4, true);
  v.setUint32(16, 65_535, true); // snaplen
  v.setUint32(20, 1, true); // LINKTYPE_ETHERNET
  let at = 24;
  frames.forEach((f, i) => {
    v.setUint32(at, 1_700_000_000 + i, true);
    v.setUint32(at + 4, 0, true);
    v.setUint32(at + 8, f.length, true);
    v.setUint32(at + 12, f.length, true);
    out.set(f, at + 16);
    at += 16 + f.length;
  });
  return out;
}

/** True when `tshark --version` runs. */
export async function haveTshark(): Promise<boolean> {
  try {
    const r = await new Deno.Command("tshark", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

/** Run tshark and return its stdout; fails the test when tshark fails. */
export async function tshark(args: string[]): Promise<string> {
  const r = await new Deno.Command("tshark", { args, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout);
  const err = new TextDecoder().decode(r.stderr).split("\n").filter((l) =>
    l !== "" && !l.includes("Running as user")
  ).join("\n");
  assert.equal(r.success, true, `tshark failed: ${err}`);
  return out;
}
