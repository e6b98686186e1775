/**
 * Every frame moves exactly one fate counter. The fuzz corpus (the seeds
 * of the three targets, mutated with a fixed seed) goes into the NIC one
 * frame at a time; around each frame the whole counter tree
 * (`Stack.snapshotStats`, and the services' counters: the host's DHCP
 * clients) is read, diffed, and each counter that moved is sorted as a
 * fate or as informational. The host's seeds are picked as the fuzzer
 * picks them, its live ones (in-window segments, replies with the current
 * transaction id) among them, and its `tend()` runs before the "before"
 * side of each diff is read: what the application does between frames
 * (reads, writes, a connection opened again) is no frame's. A frame ends in exactly one fate:
 * dropped (one drop counter, at whatever layer gave up), consumed by a
 * protocol (an ARP or NDP message handled, an ICMP message answered or
 * handed on, a datagram delivered to a socket, a segment to a connection
 * or listener), forwarded, or queued as a fragment. A frame that moves no
 * fate is a silent drop, one that moves two a double count: both are
 * stack bugs.
 *
 * Informational counters say more about a frame without being its fate:
 * the way in (frames and packets received, handed to a layer), bytes,
 * what the stack sent because of it (replies, ICMP errors, resets, NDP and
 * ARP traffic, and their output failures), the neighbor, conntrack and
 * RA/SLAAC tables, and what a socket or connection did with what it was
 * handed (its own window, queue and RA checks), and what an application
 * made of a datagram (a DHCP client's verdict: one per datagram, under
 * "udp delivered"). A fragment that completes a datagram is not a fate of
 * its own: the datagram's is.
 *
 * Every counter of the tree is in one of the two lists, so a new counter
 * fails this test until it is classified.
 */
import assert from "node:assert/strict";
import { SeededRandom } from "../../stack/mod.ts";
import { deliver, freshTarget, mutate, type Target } from "./_fuzz.ts";

/** Where a fate belongs: local delivery must be counted by IP exactly for the transport fates. */
type Layer = "link" | "arp" | "ip" | "transport";

/** The counters that are a frame's fate, by path (a NIC's name as `*`), with their layer. */
const FATES: Record<string, Layer> = {
  // Ethernet.
  "nics.*.runtFramesReceived": "link",
  "nics.*.notForUsFramesReceived": "link",
  "nics.*.vlanTaggedFramesDropped": "link",
  "nics.*.unknownEtherTypeFramesDropped": "link",
  // ARP: malformed or dropped, else handled by operation.
  "stack.arp.malformedReceived": "arp",
  "stack.arp.unknownOpDropped": "arp",
  "stack.arp.groupSenderDropped": "arp",
  "stack.arp.requestsAnswered": "arp",
  "stack.arp.requestsUnanswered": "arp",
  "stack.arp.requestsNotForUs": "arp",
  "stack.arp.repliesReceived": "arp",
  // ICMPv4: malformed, else handled by type.
  "stack.icmpv4.malformedReceived": "transport",
  "stack.icmpv4.echoRequestsAnswered": "transport",
  "stack.icmpv4.echoRepliesReceived": "transport",
  "stack.icmpv4.errorsReceived": "transport",
  "stack.icmpv4.unknownTypeReceived": "transport",
  "stack.icmpv4.broadcastEchoesIgnored": "transport",
  // ICMPv6, NDP, MLD.
  "stack.icmpv6.malformedReceived": "transport",
  "stack.icmpv6.echoRequestsAnswered": "transport",
  "stack.icmpv6.echoRepliesReceived": "transport",
  "stack.icmpv6.errorsReceived": "transport",
  "stack.icmpv6.unknownTypeReceived": "transport",
  "stack.icmpv6.ndpInFragmentDropped": "transport",
  "stack.icmpv6.packetTooBigIgnored": "transport",
  "stack.ndp.invalidDropped": "transport",
  "stack.ndp.solicitationsReceived": "transport",
  "stack.ndp.advertisementsReceived": "transport",
  "stack.ndp.routerAdvertisementsReceived": "transport",
  "stack.ndp.routerSolicitationsReceived": "transport",
  "stack.ndp.redirectsIgnored": "transport",
  "stack.mld.queriesReceived": "transport",
  "stack.mld.invalidQueriesDropped": "transport",
  "stack.mld.reportsReceived": "transport",
  // UDP drops (delivery is derived, below).
  "stack.udp.malformedReceived": "transport",
  "stack.udp.checksumErrors": "transport",
  "stack.udp.unknownPortReceived": "transport",
  // TCP: dropped, answered with a reset, or to a connection or a listener.
  "stack.tcp.malformedReceived": "transport",
  "stack.tcp.checksumErrors": "transport",
  "stack.tcp.noSocketReceived": "transport",
  "stack.tcp.segmentsReceived": "transport",
  "stack.tcp.listenDrops": "transport",
  "stack.tcp.synCookiesSent": "transport",
  "stack.tcp.synCookiesFailed": "transport",
  "stack.tcp.listenSegmentsDropped": "transport",
};

/** IP's fates, the same in both families: the drop tables' receive and forward counters, and forwarded. */
const IP_FATES = [
  "malformedPacketsReceived",
  "checksumErrors",
  "invalidAddressesReceived",
  "sourceRouteDropped",
  "optionsDropped",
  "routingHeaderDropped",
  "unknownProtocolReceived",
  "noNextHeaderReceived",
  "tentativeDropped",
  "notForUsDropped",
  "multicastNotJoinedDropped",
  "fragmentsMalformed",
  "fragmentOverlapsDropped",
  "firewallDropped",
  "forwarding.packets",
  "forwarding.ttlExceeded",
  "forwarding.noRoute",
  "forwarding.blackholeDropped",
  "forwarding.unreachableRouteDropped",
  "forwarding.prohibitRouteDropped",
  "forwarding.packetTooBig",
  "forwarding.linkLocalNotForwarded",
  "forwarding.linkControlNotForwarded",
];
/** The reassemblers' drops of the fragment at hand (a datagram dropped for it counts once). */
const REASSEMBLY_FATES = [
  "duplicatesIgnored",
  "overlapsDropped",
  "tooLongDropped",
  "inconsistentDropped",
  "malformedDropped",
  "lateFragmentsDropped",
  "memoryLimitDropped",
  "bufferPoolExhausted",
];
for (const f of ["ipv4", "ipv6"]) {
  for (const k of IP_FATES) FATES[`stack.${f}.${k}`] = "ip";
  for (const k of REASSEMBLY_FATES) FATES[`reassembly.${f}.${k}`] = "ip";
}
// IPv6's overlap drop is IP's own (RFC 5722, the drop table's FRAGMENT_OVERLAP:
// fragmentOverlapsDropped); the reassembler's overlapsDropped is its tally of it.
delete FATES["reassembly.ipv6.overlapsDropped"];

/**
 * Fates no counter names: an entry counter's moves that none of the
 * layer's outcomes took. A UDP datagram that passed its checks reached a
 * socket or service; a fragment neither dropped nor completing its
 * datagram was queued.
 */
const DERIVED: { name: string; entry: string; minus: string[]; layer: Layer }[] = [
  {
    name: "udp delivered",
    entry: "stack.udp.datagramsReceived",
    minus: [
      "stack.udp.malformedReceived",
      "stack.udp.checksumErrors",
      "stack.udp.unknownPortReceived",
    ],
    layer: "transport",
  },
  {
    // A connection made from a cookie counts as a passive open too; its ACK is its first segment.
    name: "tcp SYN to a listener",
    entry: "stack.tcp.passiveOpens",
    minus: ["stack.tcp.synCookiesReceived"],
    layer: "transport",
  },
  ...["ipv4", "ipv6"].map((f) => ({
    name: `${f} fragment queued`,
    entry: `reassembly.${f}.fragmentsReceived`,
    minus: [...REASSEMBLY_FATES, "datagramsReassembled"].map((k) => `reassembly.${f}.${k}`),
    layer: "ip" as Layer,
  })),
];

/** Counters that are not a frame's fate (see the module doc), by path or by owner prefix. */
const INFORMATIONAL: string[] = [
  // The way in, and what the stack sent.
  "nics.*.framesReceived",
  "nics.*.bytesReceived",
  "nics.*.framesSent",
  "nics.*.bytesSent",
  "nics.*.txErrors",
  "nics.*.ipv4FramesReceived",
  "nics.*.arpFramesReceived",
  "nics.*.ipv6FramesReceived",
  // The sum of the NICs' unknownEtherTypeFramesDropped.
  "stack.unknownEtherTypeFramesDropped",
  // Buffers for what the stack sends (a received frame already has its own).
  "stack.bufferPoolExhausted",
  "stack.arp.packetsReceived",
  "stack.arp.requestsSent",
  "stack.arp.gratuitousSent",
  "stack.icmpv4.messagesReceived",
  "stack.icmpv4.errorsSent",
  "stack.icmpv4.errorsSuppressed",
  "stack.icmpv4.errorsRateLimited",
  "stack.icmpv6.messagesReceived",
  "stack.icmpv6.errorsSent",
  "stack.icmpv6.errorsSuppressed",
  "stack.icmpv6.errorsRateLimited",
  "stack.ndp.messagesReceived",
  // What an NS or NA was, once counted by type.
  "stack.ndp.notForUs",
  "stack.ndp.solicitationsUnanswered",
  "stack.ndp.loopedBackSolicitations",
  "stack.ndp.duplicateAfterDad",
  "stack.ndp.solicitationsSent",
  "stack.ndp.advertisementsSent",
  "stack.ndp.dadProbesSent",
  "stack.ndp.dadSucceeded",
  "stack.ndp.dadFailed",
  "stack.ndp.redirectsSent",
  "stack.mld.reportsSent",
  "stack.udp.datagramsReceived",
  "stack.udp.datagramsSent",
  "stack.udp.sendFailed",
  // The socket's own queue: the datagram was delivered to it.
  "stack.udp.receiveQueueFullDropped",
  // What a connection did with a segment it was handed, and what TCP sent.
  ...[
    "passiveOpens",
    "synCookiesReceived",
    "activeOpens",
    "attemptFails",
    "establishedResets",
    "segmentsSent",
    "retransmittedSegments",
    "resetsSent",
    "resetsReceived",
    "outOfWindowDropped",
    "outOfWindowAcksLimited",
    "pawsDropped",
    "challengeAcksSent",
    "challengeAcksLimited",
    "ackTooNewDropped",
    "outOfOrderQueued",
    "receiveBufferFullDropped",
    "sackRecoveries",
    "rackLossesDetected",
    "tailLossProbes",
    "timeouts",
    "zeroWindowProbesSent",
    "keepalivesSent",
    "keepaliveTimeouts",
    "delayedAcks",
    "dsacksReceived",
    "dsacksSent",
    "synRetransmits",
    "listenOverflows",
    "timeWaitReused",
    "closedWithUnreadData",
    "sendFailed",
    "ecnCeReceived",
    "ecnReductions",
    "pmtuBlackholeFallbacks",
  ].map((k) => `stack.tcp.${k}`),
  // IP: the way in, local delivery (checked against the fate's layer), what was sent.
  ...["ipv4", "ipv6"].flatMap((f) =>
    [
      "packetsReceived",
      "packetsDelivered",
      "atomicFragmentsReceived",
      "packetsReassembled",
      "packetsSent",
      "outputNoRoute",
      "outputNoSource",
      "outputTooBig",
      "packetsFragmented",
      "fragmentsCreated",
      "fragmentationFailed",
      "gsoSegmented",
      "gsoDropped",
      "tcpResetsSent",
      "forwarding.redirectsSent",
    ].map((k) => `stack.${f}.${k}`)
  ),
  // The reassemblers: fragments in (see DERIVED), datagrams out, timers, the memory gauge.
  ...["ipv4", "ipv6"].flatMap((f) =>
    ["fragmentsReceived", "datagramsReassembled", "timeouts", "evictedForMemory", "memoryInUse"]
      .map((k) => `reassembly.${f}.${k}`)
  ),
  "reassembly.ipv6.overlapsDropped",
  // The firewall's own view of the drops IP counts as firewallDropped, and what it sent or logged.
  "firewall.dropped",
  "firewall.rejectsSent",
  "firewall.natPortsExhausted",
  "firewall.masqueradeNoAddress",
  "firewall.laterFragmentsUntracked",
  "firewall.nptUntranslatable",
  "firewall.logged",
  "firewall.traced",
  // Tables and links, whole owners: entries, probes, queues, what the link wrote.
  "conntrack.",
  "neighbors.",
  "links.",
  // RA and SLAAC: what became of an RS or RA that NDP counted, and what was sent.
  "ra.",
  // The host's DHCP clients, whole owners: a reply reaches them as a datagram on their bound
  // socket (port 68, 546), whose fate is "udp delivered"; what a client made of it (taken,
  // not ours, unexpected, malformed) is the application's, and the rest is what it sent.
  "services.dhcp4-client:*.",
  "services.dhcp6-client:*.",
];

/**
 * What the host's DHCP clients made of a datagram delivered to them: one of these per datagram,
 * and only under the fate "udp delivered" (the socket is the stack's end, the client's the app's).
 */
const APP_OUTCOMES: string[] = [
  ...[
    "offersReceived",
    "acksReceived",
    "naksReceived",
    "malformedDropped",
    "notOursDropped",
    "unexpectedDropped",
    "unusableDropped",
  ].map((k) => `services.dhcp4-client:*.${k}`),
  ...[
    "advertisesReceived",
    "repliesReceived",
    "malformedDropped",
    "notOursDropped",
    "unexpectedDropped",
    "reconfigureDropped",
    "unusableDropped",
  ].map((k) => `services.dhcp6-client:*.${k}`),
];

function isInformational(path: string): boolean {
  return INFORMATIONAL.some((p) => p.endsWith(".") ? path.startsWith(p) : path === p);
}

/**
 * The counter tree of `t`: the stack's, and the services' (the host's DHCP
 * clients, by their key, as `tapir metrics` exports them).
 */
function tree(t: Target): Record<string, unknown> {
  const services: Record<string, unknown> = {};
  for (const [k, sv] of t.stack.services) {
    const st = (sv as { stats?: unknown }).stats;
    if (st !== undefined && st !== null && typeof st === "object") services[k] = st;
  }
  return { ...t.stack.snapshotStats(), services };
}

/** The paths and values of every counter of `t`, in a stable order. */
function counterPaths(t: Target): string[] {
  const out: string[] = [];
  const walk = (prefix: string, v: unknown) => {
    if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) walk(prefix === "" ? k : `${prefix}.${k}`, x);
    } else if (typeof v === "number") {
      out.push(
        prefix.replace(/^(nics|neighbors|links)\.[^.]+\./, "$1.*.")
          .replace(/^services\.([^.:]+):[^.]+\./, "services.$1:*."),
      );
    }
  };
  walk("", tree(t));
  return out;
}

function counterValues(t: Target, out: number[]): number[] {
  out.length = 0;
  const walk = (v: unknown) => {
    if (v !== null && typeof v === "object") {
      for (const k in v as object) walk((v as Record<string, unknown>)[k]);
    } else if (typeof v === "number") out.push(v);
  };
  walk(tree(t));
  return out;
}

const hex = (f: Uint8Array) => [...f].map((b) => b.toString(16).padStart(2, "0")).join("");

/** What a frame did: its fates (each with its count) and every counter that moved. */
interface Moved {
  fates: [string, number][];
  moved: string[];
  delivered: number;
  delta: Map<string, number>;
}

function classify(paths: readonly string[], before: number[], after: number[]): Moved {
  const delta = new Map<string, number>();
  for (let i = 0; i < paths.length; i++) {
    const d = after[i]! - before[i]!;
    if (d !== 0) delta.set(paths[i]!, (delta.get(paths[i]!) ?? 0) + d);
  }
  const fates: [string, number][] = [];
  for (const [p, d] of delta) if (p in FATES) fates.push([p, d]);
  for (const r of DERIVED) {
    const d = (delta.get(r.entry) ?? 0) - r.minus.reduce((s, m) => s + (delta.get(m) ?? 0), 0);
    if (d !== 0) fates.push([r.name, d]);
  }
  const delivered = (delta.get("stack.ipv4.packetsDelivered") ?? 0) +
    (delta.get("stack.ipv6.packetsDelivered") ?? 0);
  return {
    fates,
    moved: [...delta].filter(([p]) => !/bytes|memoryInUse/i.test(p)).map(([p, d]) => `${p} ${d}`),
    delivered,
    delta,
  };
}

const layerOf = (fate: string): Layer | undefined =>
  FATES[fate] ?? DERIVED.find((r) => r.name === fate)?.layer;

/**
 * The corpus of one target: `frames` frames, its seeds (fixed and live, picked as the fuzzer
 * picks them) mutated with `seed` (one in 16 sent as is). `reached` sums the fates, `seen`
 * the informational counters the frames moved up (what the host's applications made of
 * what was delivered to them).
 */
function check(
  name: string,
  seed: number,
  frames: number,
): { failures: string[]; reached: Map<string, number>; seen: Map<string, number> } {
  const t = freshTarget(name);
  const rnd = new SeededRandom(seed);
  const failures: string[] = [];
  const paths = counterPaths(t);
  const before = counterValues(t, []), after: number[] = [];
  const kinds = new Map<string, number>();
  const reached = new Map<string, number>(), seen = new Map<string, number>();
  const live = t.live ?? [];
  for (let i = 0; i < frames; i++) {
    // As the fuzzer picks: a fixed or a live seed, tend() first. What tend() makes the stack
    // do (reads, writes, TCP output, a connection opened again) is not the frame's: the
    // "before" side of the diff is read after it.
    const j = rnd.uint32() % (t.seeds.length + live.length);
    if (t.tend !== undefined) {
      t.tend();
      counterValues(t, before);
    }
    const s = j < t.seeds.length ? t.seeds[j]! : live[j - t.seeds.length]!();
    const f = rnd.uint32() % 16 === 0 ? s : mutate(s, rnd);
    deliver(t, f);
    counterValues(t, after);
    if (after.length !== before.length) {
      // An owner appeared or went: the diff would pair the wrong counters.
      failures.push(`${name}, seed ${seed}, frame ${i}: the counter tree changed shape`);
      break;
    }
    const m = classify(paths, before, after);
    for (const [p, d] of m.fates) reached.set(p, (reached.get(p) ?? 0) + d);
    for (const [p, d] of m.delta) if (d > 0 && !(p in FATES)) seen.set(p, (seen.get(p) ?? 0) + d);
    const total = m.fates.reduce((s, [, d]) => s + d, 0);
    const local = m.fates.length === 1 && layerOf(m.fates[0]![0]) === "transport" ? 1 : 0;
    const app = APP_OUTCOMES.reduce((n, p) => n + (m.delta.get(p) ?? 0), 0);
    const bad = total !== 1 || m.fates.length !== 1
      ? (total === 0 ? "no fate (a silent drop)" : `${total} fates`)
      : m.delivered !== local
      ? `IP counted ${m.delivered} local deliveries for a ${layerOf(m.fates[0]![0])} fate`
      : app > 1 || (app === 1 && m.fates[0]![0] !== "udp delivered")
      ? `${app} DHCP client outcomes for ${m.fates[0]![0]}`
      : null;
    if (bad !== null) {
      const kind = `${bad}: ${m.fates.map(([p]) => p).join(" + ")}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      if (kinds.get(kind)! <= 2) {
        failures.push(
          `${name}, seed ${seed}, frame ${i}: ${bad}\n  fates: ${
            JSON.stringify(m.fates)
          }\n  moved: ${m.moved.join(", ")}\n  frame: ${hex(f)}`,
        );
      }
    }
    // Time moves between frames, never inside a frame's diff: queues, timers and reassembly run.
    if ((i & 63) === 63) {
      t.clock.advance(rnd.uint32() % 2000);
      t.forget();
      if (t.tend === undefined) counterValues(t, before);
    } else if (t.tend === undefined) {
      for (let k = 0; k < after.length; k++) before[k] = after[k]!;
    }
  }
  const unclassified = [...new Set(paths)].filter((p) => !(p in FATES) && !isInformational(p));
  assert.deepEqual(unclassified, [], "counters that are neither a fate nor informational");
  if (kinds.size > 0) failures.unshift(`${name}: ${JSON.stringify([...kinds], null, 1)}`);
  return { failures, reached, seen };
}

/** Frames per target: 12,000 each, about a second apiece (the host reads its tree twice a frame). */
const FRAMES = 12_000;
const SEED = 20261207;

/** Fates each target's corpus must reach, so a pass is not a corpus that stops at the first check. */
const MUST_REACH: Record<string, string[]> = {
  "ipv4 router": [
    "nics.*.unknownEtherTypeFramesDropped",
    "stack.arp.malformedReceived",
    "stack.arp.requestsAnswered",
    "stack.arp.repliesReceived",
    "stack.ipv4.malformedPacketsReceived",
    "stack.ipv4.firewallDropped",
    "stack.ipv4.forwarding.packets",
    "stack.ipv4.forwarding.ttlExceeded",
    "stack.ipv4.unknownProtocolReceived",
    "ipv4 fragment queued",
    "reassembly.ipv4.duplicatesIgnored",
    "stack.icmpv4.echoRequestsAnswered",
    "udp delivered",
    "stack.udp.unknownPortReceived",
    "tcp SYN to a listener",
    "stack.tcp.segmentsReceived",
    "stack.tcp.noSocketReceived",
    "stack.tcp.listenSegmentsDropped",
  ],
  "ipv6 router": [
    "nics.*.unknownEtherTypeFramesDropped",
    "stack.ipv6.malformedPacketsReceived",
    "stack.ipv6.firewallDropped",
    "stack.ipv6.forwarding.packets",
    "stack.ipv6.forwarding.noRoute",
    "stack.ipv6.optionsDropped",
    "stack.ipv6.routingHeaderDropped",
    "stack.ipv6.multicastNotJoinedDropped",
    "ipv6 fragment queued",
    "stack.icmpv6.echoRequestsAnswered",
    "stack.ndp.solicitationsReceived",
    "stack.ndp.routerSolicitationsReceived",
    "stack.ndp.invalidDropped",
    "udp delivered",
    "stack.udp.checksumErrors",
  ],
  host: [
    // Drops on the way in, a host's not-for-us (forwarding is off) among them.
    "nics.*.unknownEtherTypeFramesDropped",
    "stack.arp.malformedReceived",
    "stack.ipv4.malformedPacketsReceived",
    "stack.ipv4.checksumErrors",
    "stack.ipv4.notForUsDropped",
    "stack.ipv6.malformedPacketsReceived",
    "stack.ipv6.notForUsDropped",
    "stack.ipv6.multicastNotJoinedDropped",
    "stack.ipv6.optionsDropped",
    "reassembly.ipv4.lateFragmentsDropped",
    "stack.udp.checksumErrors",
    "stack.tcp.checksumErrors",
    "stack.tcp.noSocketReceived",
    "stack.tcp.listenSegmentsDropped",
    "stack.icmpv6.packetTooBigIgnored",
    // Consumed: ARP, NDP and RAs, MLD, echoes, ICMP errors about live traffic, fragments.
    "stack.arp.requestsAnswered",
    "stack.arp.repliesReceived",
    "stack.ndp.routerAdvertisementsReceived",
    "stack.ndp.solicitationsReceived",
    "stack.ndp.advertisementsReceived",
    "stack.ndp.redirectsIgnored",
    "stack.mld.queriesReceived",
    "stack.icmpv4.echoRequestsAnswered",
    "stack.icmpv6.echoRequestsAnswered",
    "stack.icmpv4.errorsReceived",
    "stack.icmpv6.errorsReceived",
    "ipv4 fragment queued",
    "ipv6 fragment queued",
    // Sockets: the echo service and the DHCP clients' (UDP), the connections and the listener.
    "udp delivered",
    "stack.tcp.segmentsReceived",
    "tcp SYN to a listener",
    // Beneath those fates: SLAAC took RAs, the clients took replies, the connections went deep.
    "ra.advertisementsAccepted",
    "services.dhcp4-client:*.offersReceived",
    "services.dhcp4-client:*.acksReceived",
    "services.dhcp6-client:*.repliesReceived",
    "stack.tcp.outOfOrderQueued",
    "stack.tcp.resetsReceived",
    "stack.tcp.pawsDropped",
  ],
};

for (const name of ["ipv4 router", "ipv6 router", "host"]) {
  Deno.test(`accounting: every fuzzed frame into the ${name} moves exactly one fate counter`, () => {
    const r = check(name, SEED, FRAMES);
    assert.equal(r.failures.length, 0, r.failures.join("\n\n"));
    const missed = MUST_REACH[name]!.filter((f) => !r.reached.has(f) && !r.seen.has(f));
    assert.deepEqual(
      missed,
      [],
      `fates the corpus never reached: ${JSON.stringify([...r.reached])}`,
    );
  });
}
