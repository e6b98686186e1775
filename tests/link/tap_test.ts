import assert from "node:assert/strict";
import { TapError, tapErrorFromErrno } from "../../link/mod.ts";
import { ignoreUnlessRoot, REPO, requireRoot, run, withTopology } from "../e2e/harness.ts";

Deno.test("tapErrorFromErrno() names the fix for each errno", async (t) => {
  const cases: { name: string; errno: number; op: string; code: string; fix: RegExp }[] = [
    {
      name: "ENOENT opening /dev/net/tun",
      errno: 2,
      op: "open /dev/net/tun",
      code: "NO_TUN",
      fix: /load the tun module/,
    },
    {
      name: "ENODEV opening /dev/net/tun",
      errno: 19,
      op: "open /dev/net/tun",
      code: "NO_TUN",
      fix: /\/dev\/net\/tun exists/,
    },
    { name: "EPERM", errno: 1, op: "TUNSETIFF", code: "EPERM", fix: /CAP_NET_ADMIN/ },
    { name: "EACCES", errno: 13, op: "open /dev/net/tun", code: "EPERM", fix: /run as root/ },
    {
      name: "EBUSY",
      errno: 16,
      op: "TUNSETIFF",
      code: "EBUSY",
      fix: /another process holds tap tpl0/,
    },
    { name: "EINVAL", errno: 22, op: "TUNSETIFF", code: "EINVAL", fix: /not a TAP device/ },
    { name: "other", errno: 12, op: "TUNSETIFF", code: "errno 12", fix: /TUNSETIFF/ },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const e = tapErrorFromErrno(c.errno, c.op, "tpl0");
      assert.ok(e instanceof TapError);
      assert.equal(e.code, c.code);
      assert.match(e.message, c.fix);
      assert.match(e.message, /"tpl0"/);
    });
  }
});

Deno.test("openTap() rejects a name longer than 15 bytes before any syscall", async () => {
  const { openTap } = await import("../../link/mod.ts");
  assert.throws(
    () => openTap({ device: "x".repeat(16) }),
    (e) => e instanceof TapError && e.code === "EINVAL",
  );
});

Deno.test({
  name: "TapEndpoint on a real TAP inside a namespace",
  ignore: ignoreUnlessRoot("TapEndpoint on a real TAP inside a namespace"),
  async fn(t) {
    if (!requireRoot(t)) return;
    await withTopology("tpl-tap", async (topo) => {
      const ns = await topo.netns("t");
      const scratch = `${topo.prefix}-scratch`;
      const r = await ns.exec([
        Deno.execPath(),
        "run",
        "--allow-ffi",
        "--allow-run",
        "--allow-read",
        `${REPO}/tests/link/fixtures/tap_child.ts`,
        scratch,
      ], { timeoutMs: 30_000 }).finally(() =>
        run(["ip", "netns", "del", scratch], { check: false })
      );
      const out = JSON.parse(r.stdout);
      await t.step("creates the device up with the MTU asked for", () => {
        assert.deepEqual(out.created, { mtu: 1400, up: true, epMtu: 1400, offloads: true });
      });
      await t.step("a second open of an attached TAP is EBUSY", () => {
        assert.equal(out.busy, "EBUSY");
      });
      await t.step("a too-long name is EINVAL", () => assert.equal(out.longName, "EINVAL"));
      await t.step("reads ARP and IPv4 from the kernel and writes an ARP reply it learns", () => {
        const types = new Set(out.frames.map((f: { type: number }) => f.type));
        assert.ok(types.has(0x0806), "an ARP request arrived");
        assert.ok(types.has(0x0800), "ICMP echo arrived after the ARP reply");
        assert.equal(out.answered, true);
        assert.match(out.neigh, /lladdr 02:00:00:00:00:02/);
      });
      await t.step("a frame away from HEADROOM is moved and written", () => {
        assert.equal(out.offsetWrite, true);
        assert.equal(out.stats.txFrames, 2);
        assert.equal(out.stats.readErrors, 0);
      });
      await t.step("deleting the device's namespace takes the link down (EBADFD)", () => {
        assert.deepEqual(out.linkDown, { up: false, reason: "read: EBADFD" });
      });
      await t.step("close() removes the device", () => assert.equal(out.goneAfterClose, true));
    });
  },
});
