/**
 * `tapir set add|del|list` against a running stack's control socket: the
 * command line in its own process, the socket served by this one, and the
 * firewall's verdict on the very next packet.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import { buildStack } from "../../config/build.ts";
import { controlAnswer, serveControl } from "../../cmd/control.ts";
import { formatSetList } from "../../cmd/set.ts";
import { MemoryLink } from "../../link/mod.ts";
import { ManualClock } from "../../stack/mod.ts";
import type { Triangle } from "../topology/_topology.ts";
import { type Pkt, run } from "../stack/firewall/_packets.ts";

const root = new URL("../../", import.meta.url).pathname;

const CONFIG = `
[router]
hostname = "gw"
forwarding = true
[[interface]]
name = "lan0"
addresses = ["192.0.2.1/24", "2001:db8::1/64"]
[[interface]]
name = "wan0"
addresses = ["198.51.100.1/24"]
[firewall.sets.banned]
type = "hash:ip"
entries = ["203.0.113.1"]
[firewall.sets.svc]
type = "hash:ip,port"
family = 4
timeout = "10m"
[firewall.filter]
forward = { rules = ["-m set --match-set banned src -j DROP", "-m set --match-set svc dst,dst -j DROP"] }
`;

async function tapir(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      // Deno's own diagnostics (a "Download …" line when the npm cache is cold) are not tapir's stderr.
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net",
      `${root}main.ts`,
      ...args,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("tapir set add/del/list change a running firewall's set over the control socket", async () => {
  const clock = new ManualClock();
  const { stack, nics } = buildStack(parseConfig(CONFIG), {
    clock,
    openLink: () => MemoryLink.pair({ clock })[0],
  });
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/tapir.sock`;
  const control = await serveControl(stack, path);
  try {
    const fw = stack.firewall!;
    const router = { rLan: nics.get("lan0")!, rWan: nics.get("wan0")! } as Triangle;
    const from = (src: string): Pkt => ({
      family: src.includes(":") ? 6 : 4,
      src,
      dst: src.includes(":") ? "2001:db8:9::1" : "198.51.100.10",
      proto: 17,
      sport: 40000,
      dport: 53,
      flags: 0,
      icmpType: 0,
      icmpCode: 0,
      path: "fwd",
    });
    const c = ["--control", path];
    assert.equal(run(fw, router, from("192.0.2.7"))[0], true);

    let r = await tapir(["set", "add", "banned", "192.0.2.7", "--timeout", "1h", ...c]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "added 192.0.2.7 to banned (2 entries)\n");
    // The next packet from the address is dropped.
    assert.equal(run(fw, router, from("192.0.2.7"))[0], false);
    r = await tapir(["set", "add", "banned", "2001:db8::7", ...c]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(run(fw, router, from("2001:db8::7"))[0], false);
    r = await tapir(["set", "add", "banned", "192.0.2.7", "--timeout", "600", ...c]);
    assert.equal(r.stdout, "192.0.2.7 was in banned: its timeout starts again\n");

    r = await tapir(["set", "list", "banned", ...c]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      "Name: banned\nType: hash:ip\nFamily: inet,inet6\nTimeout: none\nMax entries: 65536\n" +
        "Number of entries: 3\nMembers:\n203.0.113.1\n192.0.2.7 timeout 600\n2001:db8::7\n",
    );
    r = await tapir(["set", "list", ...c]);
    assert.equal(r.stdout, "banned\thash:ip\t3 entries\nsvc\thash:ip,port\t0 entries\n");
    r = await tapir(["set", "add", "svc", "198.51.100.10,udp:53", "--json", ...c]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      ok: true,
      set: "svc",
      entry: "198.51.100.10,udp:53",
      changed: true,
      size: 1,
    });
    assert.equal(run(fw, router, from("192.0.2.8"))[0], false, "udp:53 to .10 is in svc");
    assert.deepEqual(fw.sets.get("svc")!.list(), [
      { entry: "198.51.100.10,udp:53", timeout: 600 },
    ]);

    r = await tapir(["set", "del", "banned", "192.0.2.7", ...c]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "deleted 192.0.2.7 from banned (2 entries)\n");
    // (Not to udp:53 of .10, which svc now holds.)
    assert.equal(run(fw, router, { ...from("192.0.2.7"), dport: 54 })[0], true);
    r = await tapir(["set", "del", "banned", "192.0.2.7", ...c]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "tapir set: 192.0.2.7 is not in set banned\n");

    // Refusals name what is wrong; nothing changes.
    for (
      const [args, why] of [
        [["add", "nosuch", "192.0.2.1"], /no set named "nosuch" \(the sets: banned, svc\)/],
        [["add", "svc", "2001:db8::1,80"], /is IPv6, and the set holds IPv4/],
        [["add", "banned", "192.0.2.0/24"], /is a network/],
        [["add", "banned", "192.0.2.1", "--timeout", "soon"], /--timeout: Cannot parse duration/],
      ] as const
    ) {
      r = await tapir(["set", ...args, ...c]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, why);
    }
    assert.equal(fw.sets.get("banned")!.size, 2);
  } finally {
    control.close();
    stack.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the control socket's set requests and their refusals", () => {
  const clock = new ManualClock();
  const { stack } = buildStack(parseConfig(CONFIG), {
    clock,
    openLink: () => MemoryLink.pair({ clock })[0],
  });
  assert.deepEqual(controlAnswer(stack, "set add svc 192.0.2.9,22 5000"), {
    ok: true,
    set: "svc",
    entry: "192.0.2.9,tcp:22",
    changed: true,
    size: 1,
  });
  clock.advance(2500);
  const list = controlAnswer(stack, "set list svc") as Parameters<typeof formatSetList>[0];
  assert.deepEqual(list.entries, [{ entry: "192.0.2.9,tcp:22", timeout: 3 }]);
  assert.match(
    formatSetList(list),
    /^Name: svc\nType: hash:ip,port\nFamily: inet\nTimeout: 600s\n/,
  );
  clock.advance(2500);
  assert.deepEqual((controlAnswer(stack, "set list svc") as typeof list).entries, []);
  for (
    const bad of ["set", "set add", "set frob svc", "set del svc 192.0.2.9,22 5", "set list svc x"]
  ) {
    assert.match(
      String((controlAnswer(stack, bad) as { error: string }).error),
      /bad set request/,
      bad,
    );
  }
  assert.match(
    String((controlAnswer(stack, "set add svc 192.0.2.9,22 -1") as { error: string }).error),
    /bad timeout/,
  );
  stack.close();
});
