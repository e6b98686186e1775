/** The family-neutral TCP reset (RFC 9293 §3.5.2): which segments get one and the header it has. */
import assert from "node:assert/strict";
import { TCP_RESET_LEN, tcpResetApplies, writeTcpReset } from "../../../stack/ip/mod.ts";
import { PacketBuffer } from "../../../stack/wire/mod.ts";

/** A TCP header at offset 0 (data offset 5) plus `data` bytes of payload. */
function segment(
  f: { sport: number; dport: number; seq: number; ack: number; flags: number; data?: number },
) {
  const b = new PacketBuffer(64);
  const n = 20 + (f.data ?? 0);
  b.setFrame(0, n);
  b.view.setUint16(0, f.sport);
  b.view.setUint16(2, f.dport);
  b.view.setUint32(4, f.seq);
  b.view.setUint32(8, f.ack);
  b.data[12] = 5 << 4;
  b.data[13] = f.flags;
  return { b, n };
}

const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;

Deno.test("TCP reset: the answer's ports, sequence numbers and flags (RFC 9293 §3.5.2)", async (t) => {
  const cases = [
    {
      name: "SYN without ACK: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>",
      seg: { sport: 40000, dport: 80, seq: 1000, ack: 0, flags: SYN },
      want: { seq: 0, ack: 1001, flags: RST | ACK },
    },
    {
      name: "ACK with 10 bytes: <SEQ=SEG.ACK><CTL=RST>",
      seg: { sport: 40000, dport: 80, seq: 5, ack: 777, flags: ACK, data: 10 },
      want: { seq: 777, ack: 0, flags: RST },
    },
    {
      name: "FIN with 3 bytes, no ACK: ACK = SEQ + 3 + 1, wrapping at 2^32",
      seg: { sport: 1, dport: 2, seq: 0xffffffff, ack: 0, flags: FIN, data: 3 },
      want: { seq: 0, ack: 3, flags: RST | ACK },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { b: s, n } = segment(c.seg);
      assert.ok(tcpResetApplies(s, 0, n));
      const out = new PacketBuffer(64);
      out.data.fill(0xa5);
      writeTcpReset(s, 0, n, out, 4);
      const v = out.view;
      assert.equal(v.getUint16(4), c.seg.dport);
      assert.equal(v.getUint16(6), c.seg.sport);
      assert.equal(v.getUint32(8), c.want.seq);
      assert.equal(v.getUint32(12), c.want.ack);
      assert.equal(out.data[16], 5 << 4);
      assert.equal(out.data[17], c.want.flags);
      assert.equal(v.getUint16(18), 0, "window");
      assert.equal(v.getUint32(20), 0, "checksum and urgent pointer left 0");
      assert.equal(out.data[4 + TCP_RESET_LEN], 0xa5, "nothing written past the header");
    });
  }
});

Deno.test("TCP reset: never for a reset, nor for a segment shorter than a TCP header", () => {
  const rst = segment({ sport: 1, dport: 2, seq: 1, ack: 0, flags: RST });
  assert.equal(tcpResetApplies(rst.b, 0, rst.n), false);
  const ok = segment({ sport: 1, dport: 2, seq: 1, ack: 0, flags: SYN });
  assert.equal(tcpResetApplies(ok.b, 0, 19), false);
  ok.b.end = 19;
  assert.equal(tcpResetApplies(ok.b, 0, 20), false);
});
