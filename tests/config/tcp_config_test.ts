/** `[tcp]`: Linux's defaults, every key, errors with key paths, and reload. */
import assert from "node:assert/strict";
import { ConfigErrors, parseConfig } from "../../config/mod.ts";
import { buildStack } from "../../config/build.ts";
import { applyConfig } from "../../config/reload.ts";
import { MemoryLink } from "../../link/mod.ts";
import { DEFAULT_TCP_SETTINGS, ManualClock } from "../../stack/mod.ts";

const BASE = `[[interface]]\nname = "eth0"\naddresses = ["192.0.2.1/24"]\n`;

Deno.test("[tcp]: absent means Linux's defaults; keys map to the stack's settings", () => {
  assert.deepEqual(parseConfig(BASE).tcp, DEFAULT_TCP_SETTINGS);
  const cfg = parseConfig(
    BASE + `[tcp]
congestion_control = "reno"
sack = false
timestamps = false
window_scaling = false
syncookies = false
rmem_default = 65536
rmem_max = 1048576
wmem_max = 262144
max_syn_backlog = 128
somaxconn = 64
syn_retries = 3
synack_retries = 2
retries2 = 8
fin_timeout = "30s"
keepalive_time = "10m"
keepalive_intvl = "15s"
keepalive_probes = 4
rto_min = "50ms"
challenge_ack_limit = 100
ecn = 1
mtu_probing = false
base_mss = 1200
`,
  );
  const clock = new ManualClock();
  const [l] = MemoryLink.pair({ clock });
  const { stack } = buildStack(cfg, { clock, openLink: () => l });
  assert.deepEqual(stack.tcp.settings, {
    ...DEFAULT_TCP_SETTINGS,
    congestion: "reno",
    sack: false,
    timestamps: false,
    windowScaling: false,
    syncookies: false,
    rmemDefault: 65536,
    rmemMax: 1048576,
    wmemMax: 262144,
    maxSynBacklog: 128,
    somaxconn: 64,
    synRetries: 3,
    synAckRetries: 2,
    retries2: 8,
    finTimeoutMs: 30_000,
    keepaliveIdleMs: 600_000,
    keepaliveIntervalMs: 15_000,
    keepaliveProbes: 4,
    minRtoMs: 50,
    challengeAckLimit: 100,
    ecn: 1,
    mtuProbing: false,
    baseMss: 1200,
  });
  stack.close();
});

Deno.test("[tcp]: every error at once, with its key path", () => {
  const text = BASE + `[tcp]
congestion_control = "bbr"
sack = "yes"
rmem_default = 1048576
rmem_max = 65536
fin_timeout = 30
somaxconn = 0
tcp_sack = true
`;
  let errs: ConfigErrors | null = null;
  try {
    parseConfig(text);
  } catch (e) {
    if (e instanceof ConfigErrors) errs = e;
    else throw e;
  }
  assert.ok(errs !== null);
  const paths = errs.errors.map((e) => e.path).sort();
  assert.deepEqual(paths, [
    "tcp.congestion_control",
    "tcp.fin_timeout",
    "tcp.rmem_max",
    "tcp.sack",
    "tcp.somaxconn",
    "tcp.tcp_sack",
  ]);
  assert.match(errs.message, /tcp\.rmem_max.*below rmem_default/);
  assert.match(errs.message, /tcp\.fin_timeout.*write "30s"/);
  assert.match(errs.message, /tcp\.tcp_sack.*sack/);
});

Deno.test("[tcp]: a reload applies changed settings", () => {
  const clock = new ManualClock();
  const [l] = MemoryLink.pair({ clock });
  const prev = parseConfig(BASE);
  const { stack, nics } = buildStack(prev, { clock, openLink: () => l });
  const next = parseConfig(BASE + `[tcp]\ncongestion_control = "reno"\nsomaxconn = 16\n`);
  const r = applyConfig(stack, nics, prev, next);
  assert.ok(r.applied.includes("tcp: settings applied"), JSON.stringify(r));
  assert.equal(stack.tcp.settings.congestion, "reno");
  assert.equal(stack.tcp.settings.somaxconn, 16);
  stack.close();
});
