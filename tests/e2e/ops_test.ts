/**
 * Operating tapir: signals, the control socket and reload, against a
 * running `tapir run` in a namespace.
 *
 * - SIGUSR1 (which Deno ≥ 2.9.2 turns into "start the inspector"), SIGUSR2
 *   (the counter dump) and SIGHUP (reload) leave tapir running and open no
 *   listening socket (`ss -ltnup` in its namespace lists none of tapir's);
 * - the control socket is mode 0600; a second tapir on the same socket
 *   refuses and names --control; two tapirs with one hostname in two
 *   namespaces get a socket each by default;
 * - `tapir reload` applies a new route; an invalid file is rejected with
 *   its errors (exit 1) and changes nothing.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  REPO,
  requireRoot,
  requireTool,
  run,
  startTapir,
  TAPIR_PERMS,
  type Topology,
  waitFor,
  withTopology,
} from "./harness.ts";

const TOOLS = ["ss"];

function config(tap: string, hostname = "ops1", extra = ""): string {
  return `[router]
hostname = "${hostname}"
forwarding = true

[[interface]]
name = "lan0"
tap = "${tap}"
addresses = ["192.0.2.1/24"]
${extra}`;
}

function cli(args: string[]): string[] {
  return [Deno.execPath(), "run", ...TAPIR_PERMS, `${REPO}/main.ts`, ...args];
}

async function listeningOf(topo: Topology, nsName: string, pid: number): Promise<string[]> {
  const ns = topo.namespaces.find((n) => n.name === nsName)!;
  const r = await ns.exec(["ss", "-ltunpH"]);
  return r.stdout.split("\n").filter((l) => l.includes(`pid=${pid},`));
}

Deno.test({
  name: "ops e2e: signals open no socket, the control socket is per instance, reload applies",
  ignore: ignoreUnlessReady("ops e2e", TOOLS),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    for (const tool of TOOLS) if (!(await requireTool(tool))) return;
    await withTopology("tpo", async (topo) => {
      const r = await topo.netns("r");
      const tap = `tpo${Deno.pid % 100000}a`;
      const tapir = await startTapir({ config: config(tap), ns: r, topo });

      await t.step("the control socket is mode 0600", () => {
        assert.equal(Deno.statSync(tapir.controlPath).mode! & 0o777, 0o600);
      });

      await t.step("a second tapir on the same socket refuses and names --control", async () => {
        const second = await r.exec(
          cli(["run", tapir.configPath, "--control", tapir.controlPath]),
          { check: false, timeoutMs: 20_000 },
        );
        assert.equal(second.code, 1, second.stderr);
        assert.match(second.stderr, /another tapir answers on the control socket/);
        assert.match(second.stderr, /--control/);
        // The first still answers.
        const s = await r.exec(cli(["show", "routes", "--control", tapir.controlPath]));
        assert.match(s.stdout, /192\.0\.2\.0\/24/);
      });

      await t.step(
        "SIGUSR1, SIGUSR2 and SIGHUP leave tapir running and listening nowhere",
        async () => {
          // Past Deno's 500 ms grace period, when its SIGUSR1 handler is armed.
          await new Promise((res) => setTimeout(res, 1500));
          for (const sig of ["USR1", "USR2", "HUP", "USR1"]) {
            await run(["kill", `-${sig}`, String(tapir.pid)]);
            await new Promise((res) => setTimeout(res, 300));
          }
          // The pid of the deno process (ip netns exec execs it: same pid).
          assert.deepEqual(await listeningOf(topo, r.name, tapir.pid), []);
          const s = await r.exec(cli(["show", "stats", "--control", tapir.controlPath]));
          assert.match(s.stdout, /^stack$/m);
          assert.match(s.stdout, /^nic lan0$/m);
        },
      );

      await t.step(
        "tapir reload applies a new route; an invalid file changes nothing",
        async () => {
          Deno.writeTextFileSync(
            tapir.configPath,
            config(tap, "ops1", `\n[[route]]\nto = "203.0.113.0/24"\ntype = "blackhole"\n`),
          );
          const ok = await r.exec(cli(["reload", "--control", tapir.controlPath]));
          assert.match(ok.stdout, /applied: routes: 0 static routes replaced by 1/);
          const routes = await r.exec(cli(["show", "routes", "--control", tapir.controlPath]));
          assert.match(routes.stdout, /203\.0\.113\.0\/24/);
          Deno.writeTextFileSync(
            tapir.configPath,
            config(tap, "ops1", `\n[[route]]\nto = "203.0.113.0/33"\n`),
          );
          const bad = await r.exec(cli(["reload", "--control", tapir.controlPath]), {
            check: false,
          });
          assert.equal(bad.code, 1);
          assert.match(bad.stderr, /route\[0\]\.to/);
          assert.match(bad.stderr, /rejected .*nothing changed/);
          const still = await r.exec(cli(["show", "routes", "--control", tapir.controlPath]));
          assert.match(still.stdout, /203\.0\.113\.0\/24/);
        },
      );

      await t.step("reload adds an interface (its TAP appears) and removes it again", async () => {
        const tap2 = `tpo${Deno.pid % 100000}b`;
        const extra =
          `\n[[interface]]\nname = "lan1"\ntap = "${tap2}"\naddresses = ["203.0.113.1/24"]\n`;
        Deno.writeTextFileSync(tapir.configPath, config(tap, "ops1", extra));
        const add = await r.exec(cli(["reload", "--control", tapir.controlPath]));
        assert.match(add.stdout, /applied: interface lan1 added/);
        assert.ok(await r.hasLink(tap2), "the new TAP exists");
        const a = await r.exec(cli(["show", "addresses", "--control", tapir.controlPath]));
        assert.match(a.stdout, /inet 203\.0\.113\.1\/24 brd 203\.0\.113\.255 scope global lan1/);
        Deno.writeTextFileSync(tapir.configPath, config(tap, "ops1"));
        const del = await r.exec(cli(["reload", "--control", tapir.controlPath]));
        assert.match(del.stdout, /applied: interface lan1 removed/);
        await waitFor("the removed interface's TAP to go", async () => !(await r.hasLink(tap2)));
      });

      await t.step("SIGTERM: exit 0, the socket file is gone", async () => {
        const s = await tapir.stop("SIGTERM");
        assert.equal(s.code, 0, s.stderr);
        assert.doesNotMatch(s.stderr, /Debugger listening/);
        assert.match(s.stderr, /SIGHUP: reloading/);
        // SIGUSR2's dump is readable text, one counter a line, grouped by owner.
        assert.match(s.stderr, /counters \(non-zero\)\n(stack|nic lan0)\n {2}\S+ +\d+\n/);
        assert.throws(() => Deno.statSync(tapir.controlPath));
      });
    });
  },
});

Deno.test({
  name: "ops e2e: two tapirs with one hostname in two namespaces each get their own socket",
  ignore: ignoreUnlessReady("ops e2e (default socket)", []),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    await withTopology("tpo2", async (topo) => {
      const dir = topo.tempDir();
      const nss = [await topo.netns("a"), await topo.netns("b")];
      const procs = nss.map((ns, i) => {
        const tap = `tpo${Deno.pid % 100000}${i}`;
        const path = `${dir}/${i}.toml`;
        Deno.writeTextFileSync(
          path,
          config(tap, "same").replace("192.0.2.1/24", `192.0.2.${i + 1}/24`),
        );
        return { ns, tap, proc: ns.spawn(cli(["run", path]), { TMPDIR: dir }) };
      });
      for (const p of procs) {
        await waitFor(`tapir's socket in ${p.ns.name}`, async () => {
          const r = await p.ns.exec(cli(["show", "addresses", "--hostname", "same"]), {
            check: false,
            env: { TMPDIR: dir },
          });
          return r.code === 0;
        }, 20_000);
      }
      for (const [i, p] of procs.entries()) {
        const r = await p.ns.exec(cli(["show", "addresses", "--hostname", "same", "--json"]), {
          env: { TMPDIR: dir },
        });
        assert.match(r.stdout, new RegExp(`192\\.0\\.2\\.${i + 1}/24`));
      }
      const socks = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".sock"));
      assert.equal(socks.length, 2);
      for (const p of procs) p.proc.kill("SIGTERM");
      for (const p of procs) assert.equal((await p.proc.wait(10_000)).code, 0);
    });
  },
});
