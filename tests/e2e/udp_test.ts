/**
 * UDP on tapir against the kernel, both families: examples/udp_echo.ts
 * (written with the Deno-shaped API) runs on a TAP; the kernel's socat
 * sends datagrams and gets every one back (tapir sending to a kernel
 * socket); a datagram to a closed port is refused (ICMP port unreachable);
 * and a broadcast from 0.0.0.0:68 to 255.255.255.255:67 sent from a socket
 * bound to one interface leaves only that TAP (tshark on both kernel sides).
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  REPO,
  requireRoot,
  requireTool,
  waitFor,
  withTopology,
} from "./harness.ts";

const TOOLS = ["socat", "tshark"];
const PERMS = ["--allow-ffi", "--allow-read", "--allow-env"];

async function sh(ns: Netns, cmd: string, timeoutMs = 30_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

Deno.test({
  name: "UDP e2e: a Deno-shaped echo service on tapir answers the kernel's socat, both families",
  ignore: ignoreUnlessReady("UDP e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpu", async (topo) => {
      const id = Deno.pid % 100000;
      const tap = `tpu${id}a`;
      const r = await topo.netns("r");
      const h = await topo.netns("h");
      const dir = topo.tempDir();
      Deno.writeTextFileSync(
        `${dir}/echo.toml`,
        `[[interface]]\nname = "lan0"\ntap = "${tap}"\naddresses = ["192.0.2.1/24", "2001:db8:1::1/64"]\n`,
      );
      const echo = r.spawn([
        Deno.execPath(),
        "run",
        ...PERMS,
        `${REPO}/examples/udp_echo.ts`,
        `${dir}/echo.toml`,
        "7",
      ]);
      await waitFor("the echo service's TAP", () => r.hasLink(tap), 20_000);
      await moveTapToNs(tap, r, h, { address: ["192.0.2.2/24", "2001:db8:1::2/64"] });
      const send = (dst: string, port: number, text: string) =>
        sh(h, `printf '%s' '${text}' | socat -t 0.5 - UDP:${dst}:${port}`);
      // tapir's IPv6 address is usable once its DAD passed (≤ 2 s).
      await waitFor(
        "the echo over IPv6",
        async () => (await send("[2001:db8:1::1]", 7, "x")).stdout === "x",
        15_000,
      );

      for (const [fam, dst] of [["IPv4", "192.0.2.1"], ["IPv6", "[2001:db8:1::1]"]] as const) {
        await t.step(`${fam}: 10 datagrams from socat, 10 echoed back`, async () => {
          const replies: string[] = [];
          for (let i = 0; i < 10; i++) replies.push((await send(dst, 7, `datagram ${i}`)).stdout);
          assert.deepEqual(replies, Array.from({ length: 10 }, (_, i) => `datagram ${i}`));
        });
        await t.step(
          `${fam}: a datagram to a closed port is refused (port unreachable)`,
          async () => {
            const r = await send(dst, 9, "nobody");
            assert.match(r.stderr, /Connection refused/, r.stdout + r.stderr);
          },
        );
      }
      echo.kill("SIGTERM");
      assert.equal((await echo.wait(10_000)).code, 0);
    });
  },
});

Deno.test({
  name: "UDP e2e: a broadcast from 0.0.0.0:68 bound to one interface leaves only that TAP",
  ignore: ignoreUnlessReady("UDP broadcast e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpv", async (topo) => {
      const id = Deno.pid % 100000;
      const [tapA, tapB] = [`tpv${id}a`, `tpv${id}b`];
      const r = await topo.netns("r");
      const ha = await topo.netns("ha");
      const hb = await topo.netns("hb");
      const dir = topo.tempDir();
      Deno.writeTextFileSync(
        `${dir}/b.toml`,
        `[[interface]]\nname = "lan0"\ntap = "${tapA}"\naddresses = ["192.0.2.1/24"]\n` +
          `[[interface]]\nname = "lan1"\ntap = "${tapB}"\naddresses = ["198.51.100.1/24"]\n`,
      );
      const sender = r.spawn([
        Deno.execPath(),
        "run",
        ...PERMS,
        "--allow-write",
        `${REPO}/tests/e2e/fixtures/udp_broadcast.ts`,
        `${dir}/b.toml`,
        "lan1",
        dir,
      ]);
      await waitFor("the sender's TAPs", () => {
        try {
          return Deno.statSync(`${dir}/ready`).isFile;
        } catch {
          return false;
        }
      }, 20_000);
      const caps = [] as ReturnType<Netns["spawn"]>[];
      for (const [tap, ns] of [[tapA, ha], [tapB, hb]] as const) {
        // The TAP keeps working for tapir after its kernel side moved to the peer.
        await r.ip("link", "set", "dev", tap, "netns", ns.name);
        await ns.ip("link", "set", "dev", tap, "up");
        caps.push(ns.spawn([
          "tshark",
          "-n",
          "-l",
          "-i",
          tap,
          "-a",
          "duration:8",
          "-f",
          "udp port 67",
          "-T",
          "fields",
          "-e",
          "eth.dst",
          "-e",
          "ip.src",
          "-e",
          "ip.dst",
          "-e",
          "udp.srcport",
          "-e",
          "udp.dstport",
        ]));
      }
      await new Promise((res) => setTimeout(res, 2500)); // tshark is capturing
      Deno.writeTextFileSync(`${dir}/go`, "");
      const send = await sender.wait(30_000);
      assert.equal(send.code, 0, send.stderr);
      const [onA, onB] = await Promise.all(caps.map((c) => c.wait(20_000)));
      const lines = (x: string) => x.trim().split("\n").filter((l) => l !== "");
      assert.deepEqual(lines(onA!.stdout), [], `nothing on lan0's wire: ${onA!.stdout}`);
      assert.deepEqual(
        lines(onB!.stdout),
        Array(3).fill("ff:ff:ff:ff:ff:ff\t0.0.0.0\t255.255.255.255\t68\t67"),
        onB!.stdout + onB!.stderr,
      );
    });
  },
});
