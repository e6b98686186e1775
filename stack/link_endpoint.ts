/**
 * The boundary between the stack and whatever moves frames (gVisor's
 * stack/registration.go): `link/` implements {@link LinkEndpoint}; the
 * stack implements {@link NetworkDispatcher}.
 *
 * Ownership is simple and synchronous: `writePacket` does not keep the
 * buffer after it returns (it writes or copies), and `deliverFrame` does not
 * keep it either (the stack copies what it must hold, e.g. a packet waiting
 * for ARP). So a link can read the next frame into the same buffer.
 *
 * @module
 */
import type { PacketBuffer } from "./wire/packet_buffer.ts";

/** Receives frames from a link. */
export interface NetworkDispatcher {
  /** A frame arrived: `pkt.data[pkt.start, pkt.end)` starting with the Ethernet header. */
  deliverFrame(pkt: PacketBuffer): void;
  /** The link failed (its fd went away) and will deliver nothing more. */
  linkDown?(reason: string): void;
}

/** What a link can do beyond moving plain frames. */
export interface LinkCapabilities {
  /**
   * The link takes GSO super-frames and frames with a partial checksum
   * (virtio-net metadata on the PacketBuffer); without it the stack must
   * segment and complete checksums before `writePacket`.
   */
  readonly offloads: boolean;
}

/** A device that moves Ethernet frames. */
export interface LinkEndpoint {
  /** The link's own name (the TAP device, or a memory link's label). */
  readonly name: string;
  readonly capabilities: LinkCapabilities;
  /** Largest IP packet the link carries (the MTU, without the Ethernet header). */
  mtu(): number;
  /** Start delivering received frames to `d` (null stops delivery). */
  attach(d: NetworkDispatcher | null): void;
  /**
   * Send one frame, `pkt.data[pkt.start, pkt.end)`. Synchronous; returns
   * false when the frame was dropped (queue full, link down), which the
   * link counts.
   */
  writePacket(pkt: PacketBuffer): boolean;
  /** True until the link fails or is closed. */
  isUp(): boolean;
  /** Release the device. */
  close(): void;
}
