import assert from "node:assert/strict";
import { checkCommand } from "../../cmd/check.ts";

/** Runs checkCommand with console.log/error captured. */
async function run(
  files: string[],
  opts = {},
): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await checkCommand(files, opts), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const example = (f: string) => new URL(`../../examples/${f}`, import.meta.url).pathname;

Deno.test("checkCommand() exits 0 and summarizes valid files", async () => {
  const r = await run([example("router.toml"), example("host.toml"), example("lab.toml")]);
  assert.equal(r.code, 0, r.err.join("\n"));
  assert.deepEqual(r.err, []);
  assert.match(r.out[0]!, /router\.toml: ok \(2 interfaces, 4 addresses, 4 routes, 12 rules\)$/);
  assert.match(r.out[1]!, /host\.toml: ok \(1 interface, 1 address, 1 route, 1 rule\)$/);
  assert.match(
    r.out[2]!,
    /lab\.toml: ok \(lab: 4 nodes, 3 links, 19 probes; 6 interfaces, 9 addresses, 5 routes, 2 rules\)$/,
  );
});

Deno.test("checkCommand() exits 1 and prints every error of an invalid file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tapir-check-" });
  try {
    const bad = `${dir}/bad.toml`;
    await Deno.writeTextFile(
      bad,
      `[[interface]]\nname = "lan0"\nmtu = 10\naddresses = ["192.0.2.1/33"]\n`,
    );
    const r = await run([example("host.toml"), bad]);
    assert.equal(r.code, 1);
    assert.equal(r.out.length, 1);
    assert.deepEqual(r.err, [
      `${bad}:3:1: interface[0].mtu: 10 is out of range (68 to 65535)`,
      `${bad}:4:14: interface[0].addresses[0]: Cannot parse prefix "192.0.2.1/33": prefix length must be 0 to 32, found "33"`,
      `${bad}: 2 errors`,
    ]);
    // --lab forces a lab check: a plain config has no [lab] table.
    const asLab = await run([example("host.toml")], { lab: true });
    assert.equal(asLab.code, 1);
    assert.match(asLab.err.join("\n"), /unknown key "router"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkCommand() exits 2 for an unreadable file, with the OS reason", async () => {
  const r = await run([example("host.toml"), "/nonexistent/tapir.toml", example("lab.toml")]);
  assert.equal(r.code, 2);
  assert.equal(r.out.length, 2);
  assert.match(r.err[0]!, /^\/nonexistent\/tapir\.toml: cannot read: No such file or directory/);
});
