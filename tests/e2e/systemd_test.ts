/**
 * tapir under systemd: examples/tapir.service passes `systemd-analyze
 * verify`, and `tapir run` sends the sd_notify messages systemd expects,
 * in order, to a listener on NOTIFY_SOCKET: READY=1 once every interface
 * is up, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a SIGHUP
 * reload, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM.
 */
import assert from "node:assert/strict";
import {
  ignoreUnlessReady,
  REPO,
  requireRoot,
  requireTool,
  run,
  TAPIR_PERMS,
  waitFor,
  withTopology,
} from "./harness.ts";

Deno.test({
  name: "examples/tapir.service passes systemd-analyze verify",
  ignore: ignoreUnlessReady("systemd unit", ["systemd-analyze"]),
  async fn() {
    if (!(await requireTool("systemd-analyze"))) return;
    const dir = Deno.makeTempDirSync({ prefix: "tapir-unit-" });
    try {
      // verify checks that ExecStart's program exists: stand one in for the installed binary.
      Deno.writeTextFileSync(`${dir}/tapir`, "#!/bin/sh\n", { mode: 0o755 });
      const unit = Deno.readTextFileSync(`${REPO}/examples/tapir.service`);
      assert.match(unit, /^Type=notify$/m);
      assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
      assert.match(unit, /^CapabilityBoundingSet=CAP_NET_ADMIN$/m);
      Deno.writeTextFileSync(
        `${dir}/tapir.service`,
        unit.replaceAll("/usr/local/bin/tapir", `${dir}/tapir`),
      );
      const r = await run(["systemd-analyze", "verify", `${dir}/tapir.service`], {
        check: false,
      });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.stderr.trim(), "", r.stderr);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

const LISTENER = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.2)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        continue
    print(msg.replace("\\n", " | "), flush=True)
    if msg.startswith("STOPPING=1"):
        break
`;

Deno.test({
  name: "tapir run notifies systemd: READY, RELOADING/READY around SIGHUP, WATCHDOG, STOPPING",
  ignore: ignoreUnlessReady("sd_notify e2e", ["/usr/bin/python3"]),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (!requireRoot(t)) return;
    await withTopology("tpn", async (topo) => {
      const ns = await topo.netns("r");
      const dir = topo.tempDir();
      const sock = `${dir}/notify.sock`;
      const cfg = `${dir}/tapir.toml`;
      Deno.writeTextFileSync(
        cfg,
        `[[interface]]\nname = "lan0"\ntap = "tpn${
          Deno.pid % 100000
        }"\naddresses = ["192.0.2.1/24"]\n`,
      );
      const listener = ns.spawn(["/usr/bin/python3", "-c", LISTENER, sock, "30"]);
      await waitFor("the notify listener", () => {
        try {
          return Deno.statSync(sock).isSocket === true;
        } catch {
          return false;
        }
      });
      const tapir = ns.spawn(
        [
          Deno.execPath(),
          "run",
          ...TAPIR_PERMS,
          `${REPO}/main.ts`,
          "run",
          cfg,
          "--control",
          `${dir}/c.sock`,
        ],
        { NOTIFY_SOCKET: sock, WATCHDOG_USEC: "400000" },
      );
      await waitFor("the control socket", () => {
        try {
          return Deno.statSync(`${dir}/c.sock`).isSocket === true;
        } catch {
          return false;
        }
      }, 20_000);
      // Past Deno's start-up and the first reload's parse (~170 ms cold), with room for a
      // loaded machine: the order is asserted, not the timing.
      await new Promise((r) => setTimeout(r, 1000));
      await run(["kill", "-HUP", String(tapir.pid)]);
      await new Promise((r) => setTimeout(r, 1500));
      tapir.kill("SIGTERM");
      const tr = await tapir.wait(10_000);
      assert.equal(tr.code, 0, tr.stderr);
      const lr = await listener.wait(10_000);
      const msgs = lr.stdout.trim().split("\n");
      const kinds = msgs.map((m) => m.split("=")[0]).filter((k) => k !== "WATCHDOG");
      assert.deepEqual(kinds, ["READY", "RELOADING", "READY", "STOPPING"], msgs.join("\n"));
      assert.match(msgs.find((m) => m.startsWith("RELOADING"))!, /MONOTONIC_USEC=\d+/);
      // 0.4 s watchdog: a keep-alive every 0.2 s over ~2.5 s of running.
      assert.ok(msgs.filter((m) => m.startsWith("WATCHDOG=1")).length >= 3, msgs.join("\n"));
      const ready = msgs.findIndex((m) => m.startsWith("READY"));
      const firstWd = msgs.findIndex((m) => m.startsWith("WATCHDOG"));
      assert.ok(ready < firstWd, "READY=1 comes before the first WATCHDOG=1");
    });
  },
});
