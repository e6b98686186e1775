/**
 * Issue #16's wire conformance items, re-run with the third-party tools
 * that found them, at tapir and at a Linux kernel router in the same run:
 * every probe goes to both, and tapir must answer as the kernel does.
 *
 *   h1 (192.0.2.2, 2001:db8:1::2) ── tapir lan0 (192.0.2.1, 2001:db8:1::1; forwarding)
 *   kh1 (the same addresses)      ── kernel router kr (the same addresses; forwarding)
 *   s (RA sender) ─┬─ tapir host0 (accept_ra, not forwarding)
 *                  └─ kernel host kh (accept_ra = 1)
 *
 * | item | probe | tool |
 * |---|---|---|
 * | 1 Subnet-Router anycast | echo to 2001:db8:1:: answered from a unicast address | scapy |
 * | 2 PTB < 1280 | `toobig6` implants MTU 1000; a 1,248-byte reply still leaves whole | thc-ipv6, scapy |
 * | 3 fragment IDs | `frag6 --frag-id-policy`: randomized, as the kernel's | ipv6toolkit |
 * | 4 HbH after Fragment | Parameter Problem code 1 | scapy |
 * | 5 version 4 in an IPv6 frame | no answer | scapy |
 * | 6 LSRR to the router | no answer | scapy |
 * | 7 flow label | the echo reply's label is not 0; `flow6 --flow-label-policy` | scapy, ipv6toolkit |
 * | 8 Record Route | filled with the router's address twice, as the kernel; an unknown option not echoed | scapy |
 * | 9 Pad1/PadN, option count | non-zero PadN, > 7 padding bytes, 9 options dropped; 8 answered | scapy |
 * | 10 PIO preferred > valid | ignored by a host: no route, no address; the other PIO learned | scapy |
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  moveTapToNs,
  type Netns,
  REPO,
  requireTool,
  run,
  startTapir,
  type Tapir,
  type Topology,
  waitFor,
  withTopology,
} from "./harness.ts";

const id = String(Deno.pid % 100000);
const LAN_TAP = `tcl${id}`;
const HOST_TAP = `tch${id}`;
const PROBES = `${REPO}/tests/e2e/fixtures/conformance_probes.py`;
const BAD_PREFIX = "2001:db8:77::";
const GOOD_PREFIX = "2001:db8:88::";

const CONFIG = `
[router]
hostname = "e2e-conform"
forwarding = true

[[interface]]
name = "lan0"
tap = "${LAN_TAP}"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]

[[interface]]
name = "host0"
tap = "${HOST_TAP}"
forwarding = false
accept_ra = true
`;

const TOOLS = ["ping", "scapy", "atk6-toobig6", "frag6", "flow6"];

async function sh(ns: Netns, cmd: string, timeoutMs = 30_000) {
  return await ns.exec(["sh", "-c", cmd], { check: false, timeoutMs });
}

/** `tapir show WHAT --json`. */
async function show(tapir: Tapir, what: string): Promise<unknown> {
  const r = await run([
    Deno.execPath(),
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-net",
    `${REPO}/main.ts`,
    "show",
    what,
    "--control",
    tapir.controlPath,
    "--json",
  ]);
  return JSON.parse(r.stdout);
}

/** A counter of `tapir show stats --json` by its dotted path under `stack`. */
async function counter(tapir: Tapir, path: string): Promise<number> {
  let x: unknown = (await tapir.stats()).stack;
  for (const k of path.split(".")) x = (x as Record<string, unknown>)[k];
  assert.equal(typeof x, "number", `stack.${path}`);
  return x as number;
}

/** What one probe brought back (see conformance_probes.py), null for nothing. */
interface Answer {
  type: number;
  code: number;
  src?: string;
  fl?: number;
  fragmented?: boolean;
  pointer?: number;
  options?: { option: number; routers?: string[] }[];
}

/** One router under test and its LAN host. */
interface Side {
  name: string;
  host: Netns;
  hostDev: string;
  routerMac: string;
}

async function probe(side: Side): Promise<Record<string, Answer | null>> {
  const r = await sh(
    side.host,
    `/usr/bin/python3 ${PROBES} probes ${side.hostDev} ${side.routerMac} ` +
      `192.0.2.2 192.0.2.1 2001:db8:1::2 2001:db8:1::1 2001:db8:1::`,
    90_000,
  );
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

/** Wait ≤ 10 s until nothing in `ns` is tentative. */
async function dadDone(ns: Netns): Promise<void> {
  await waitFor(`IPv6 DAD in ${ns.name}`, async () => {
    const r = await sh(ns, "ip -6 addr show tentative");
    return r.code === 0 && r.stdout.trim() === "";
  }, 10_000);
}

/** The kernel router kr between kh1 and nothing else, with tapir's LAN addresses. */
async function kernelRouter(topo: Topology): Promise<Side & { r: Netns }> {
  const r = await topo.netns("kr");
  const h = await topo.netns("kh1");
  await sh(r, "sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1");
  const rDev = `tck${id}r`, hDev = `tck${id}h`;
  await r.ip("link", "add", rDev, "type", "veth", "peer", "name", hDev, "netns", h.name);
  await r.ip("addr", "add", "192.0.2.1/24", "dev", rDev);
  await r.ip("addr", "add", "2001:db8:1::1/64", "dev", rDev, "nodad");
  await r.ip("link", "set", rDev, "up");
  await h.ip("addr", "add", "192.0.2.2/24", "dev", hDev);
  await h.ip("addr", "add", "2001:db8:1::2/64", "dev", hDev, "nodad");
  await h.ip("link", "set", hDev, "up");
  const mac = JSON.parse((await r.ip("-j", "link", "show", "dev", rDev)).stdout)[0].address;
  return { name: "kernel", host: h, hostDev: hDev, routerMac: mac, r };
}

Deno.test({
  name: "conformance e2e: tapir answers issue #16's probes as the kernel router does",
  ignore: ignoreUnlessReady("conformance e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpcf", async (topo) => {
      const tr = await topo.netns("tr");
      const h1 = await topo.netns("h1");
      const s = await topo.netns("s");
      const tapir = await startTapir({ config: CONFIG, ns: tr, topo });
      await moveTapToNs(LAN_TAP, tr, h1, { address: ["192.0.2.2/24", "2001:db8:1::2/64"] });
      await moveTapToNs(HOST_TAP, tr, s);
      const kernel = await kernelRouter(topo);
      const kh = await topo.netns("kh");
      const sDev = `tcs${id}`, khDev = `tch${id}k`;
      await s.ip("link", "add", sDev, "type", "veth", "peer", "name", khDev, "netns", kh.name);
      await s.ip("link", "set", sDev, "up");
      await kh.ip("link", "set", khDev, "up");
      await waitFor("tapir's IPv6 addresses to pass DAD", async () => {
        const a = await show(tapir, "addresses") as Record<string, { ipv6: string[] }>;
        return Object.values(a).every((n) => n.ipv6.length > 0) &&
          Object.values(a).every((n) => n.ipv6.every((x) => !x.includes("tentative")));
      }, 10_000);
      for (const ns of [h1, s, kernel.r, kernel.host, kh]) await dadDone(ns);
      const lanMac = (await show(tapir, "addresses") as Record<string, { mac: string }>).lan0!.mac;
      const tapirSide: Side = { name: "tapir", host: h1, hostDev: LAN_TAP, routerMac: lanMac };
      const sides = [tapirSide, kernel];
      for (const x of sides) {
        await sh(x.host, "ping -n -c 1 -W 2 192.0.2.1; ping -6 -n -c 1 -W 2 2001:db8:1::1");
      }

      // Item 2 first, so that the probes' large echo runs under the implanted MTU.
      const ptbBefore = await counter(tapir, "icmpv6.packetTooBigIgnored");
      for (const x of sides) {
        const r = await sh(x.host, `atk6-toobig6 ${x.hostDev} 2001:db8:1::1 2001:db8:1::2 1000`);
        assert.equal(r.code, 0, `${x.name}: toobig6: ${r.stdout}${r.stderr}`);
      }
      const counters0 = {
        sourceRoute: await counter(tapir, "ipv4.sourceRouteDropped"),
        options: await counter(tapir, "ipv6.optionsDropped"),
        malformed: await counter(tapir, "ipv6.malformedPacketsReceived"),
      };
      const res: Record<string, Record<string, Answer | null>> = {};
      for (const x of sides) res[x.name] = await probe(x);
      console.log(JSON.stringify(res));
      const tp = res.tapir!, kp = res.kernel!;

      await t.step("1: echo to the Subnet-Router anycast address, answered from unicast", () => {
        assert.equal(kp.anycast_echo?.type, 129, "the kernel answers");
        assert.equal(tp.anycast_echo?.type, 129, JSON.stringify(tp.anycast_echo));
        assert.equal(tp.anycast_echo?.src, "2001:db8:1::1");
        assert.equal(kp.anycast_echo?.src, "2001:db8:1::1");
      });

      await t.step("2: a Packet Too Big below 1280 does not lower the path MTU", async () => {
        assert.equal(kp.ptb_below_1280_reply?.type, 129);
        assert.equal(kp.ptb_below_1280_reply?.fragmented, false, "the kernel clamps to 1280");
        assert.equal(tp.ptb_below_1280_reply?.type, 129);
        assert.equal(tp.ptb_below_1280_reply?.fragmented, false, "tapir sent the reply whole");
        assert.equal(await counter(tapir, "icmpv6.packetTooBigIgnored"), ptbBefore + 1);
      });

      await t.step("4: Hop-by-Hop after a Fragment header is Parameter Problem code 1", () => {
        assert.deepEqual([kp.hbh_after_fragment?.type, kp.hbh_after_fragment?.code], [4, 1]);
        assert.deepEqual([tp.hbh_after_fragment?.type, tp.hbh_after_fragment?.code], [4, 1]);
        assert.equal(tp.hbh_after_fragment?.pointer, kp.hbh_after_fragment?.pointer);
      });

      await t.step("5: version 4 in an IPv6 frame is dropped", async () => {
        assert.equal(kp.version4_nibble, null);
        assert.equal(tp.version4_nibble, null);
        assert.ok(
          (await counter(tapir, "ipv6.malformedPacketsReceived")) > counters0.malformed,
          "counted as malformed",
        );
      });

      await t.step("6: a loose source route to the router is not answered", async () => {
        assert.equal(kp.lsrr_to_router, null);
        assert.equal(tp.lsrr_to_router, null);
        assert.equal(
          await counter(tapir, "ipv4.sourceRouteDropped"),
          counters0.sourceRoute + 1,
        );
      });

      await t.step("7: the echo reply carries a flow label", () => {
        assert.ok((kp.flow_label?.fl ?? 0) !== 0, "the kernel labels it");
        assert.ok((tp.flow_label?.fl ?? 0) !== 0, JSON.stringify(tp.flow_label));
      });

      await t.step("8: Record Route filled with the router; an unknown option left out", () => {
        const rr = (a: Answer | null | undefined) => a?.options?.find((o) => o.option === 7);
        // Both record the router twice: on receipt (Linux's ip_options_compile) and as
        // the reply leaves (ip_options_echo; RFC 1122 §3.2.2.6).
        assert.ok(rr(kp.record_route)?.routers?.includes("192.0.2.1"), "the kernel records");
        assert.deepEqual(rr(tp.record_route)?.routers, rr(kp.record_route)?.routers);
        assert.deepEqual(rr(tp.record_route)?.routers, ["192.0.2.1", "192.0.2.1"]);
        assert.equal(kp.unknown_option?.type, 0);
        assert.equal(tp.unknown_option?.type, 0);
        assert.deepEqual(tp.unknown_option?.options, kp.unknown_option?.options);
        assert.deepEqual(tp.unknown_option?.options, []);
      });

      await t.step("9: padding and option counts checked as the kernel checks them", async () => {
        for (const c of ["padn_ok", "eight_options"]) {
          assert.equal(kp[c]?.type, 129, `kernel ${c}`);
          assert.equal(tp[c]?.type, 129, `tapir ${c}`);
        }
        for (const c of ["padn_nonzero", "pad_over_7", "nine_options"]) {
          assert.equal(kp[c], null, `kernel ${c}`);
          assert.equal(tp[c], null, `tapir ${c}`);
        }
        assert.equal(await counter(tapir, "ipv6.optionsDropped"), counters0.options + 3);
      });

      await t.step(
        "3: fragment IDs random, as the kernel's (frag6 --frag-id-policy)",
        async () => {
          const policy: Record<string, string> = {};
          for (const x of sides) {
            const r = await sh(
              x.host,
              `frag6 -i ${x.hostDev} --frag-id-policy -d 2001:db8:1::1 -s 2001:db8:1::2`,
              90_000,
            );
            policy[x.name] = r.stdout + r.stderr;
          }
          console.log(JSON.stringify(policy));
          // Both random for each packet (Linux's ipv6_select_ident draws them).
          assert.match(policy.kernel!, /Fragment ID policy: Randomized/, policy.kernel);
          assert.match(policy.tapir!, /Fragment ID policy: Randomized/, policy.tapir);
          for (const x of sides) {
            assert.doesNotMatch(policy[x.name]!, /Global/i, `${x.name}: ${policy[x.name]}`);
          }
        },
      );

      await t.step("7: flow6 --flow-label-policy finds labels that are not 0", async () => {
        const policy: Record<string, string> = {};
        for (const x of sides) {
          const r = await sh(
            x.host,
            `flow6 -i ${x.hostDev} --flow-label-policy -d 2001:db8:1::1 -s 2001:db8:1::2`,
            90_000,
          );
          policy[x.name] = r.stdout + r.stderr;
        }
        console.log(JSON.stringify(policy));
        // flow6 probes TCP port 80 and reads the labels of the resets. The kernel's
        // resets here do not give it enough samples ("Didn't receive enough response
        // packets"), so its run is shown, not compared; the scapy step above compares
        // the echo replies' labels with the kernel's.
        assert.match(policy.tapir!, /Flow Label policy: Randomized/, policy.tapir);
      });

      await t.step("10: a host ignores a PIO whose preferred lifetime exceeds valid", async () => {
        for (const dev of [HOST_TAP, sDev]) {
          const r = await sh(
            s,
            `/usr/bin/python3 ${PROBES} ra ${dev} ${BAD_PREFIX} ${GOOD_PREFIX}`,
          );
          assert.equal(r.code, 0, r.stderr);
        }
        type Route = { to: string };
        await waitFor("both hosts to learn the good prefix", async () => {
          const routes = await show(tapir, "routes") as Route[];
          const k = await sh(kh, "ip -6 route show");
          return routes.some((x) => x.to === `${GOOD_PREFIX}/64`) &&
            k.stdout.includes(`${GOOD_PREFIX}/64`);
        }, 10_000);
        const routes = await show(tapir, "routes") as Route[];
        assert.ok(!routes.some((x) => x.to === `${BAD_PREFIX}/64`), JSON.stringify(routes));
        const k = await sh(kh, "ip -6 route show; ip -6 addr show");
        assert.doesNotMatch(k.stdout, /2001:db8:77:/, "the kernel ignores it");
        const a = await show(tapir, "addresses") as Record<string, { ipv6: string[] }>;
        assert.ok(
          !a.host0!.ipv6.some((x) => x.startsWith("2001:db8:77:")),
          JSON.stringify(a.host0),
        );
      });

      const stop = await tapir.stop("SIGTERM");
      assert.equal(stop.code, 0, stop.stderr);
    });
  },
});
