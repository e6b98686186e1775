/**
 * Named counters, nested by protocol, in the spirit of gVisor's
 * tcpip.Stats. Every field is a plain number the datapath increments; a
 * dropped packet always raises exactly one `…Dropped`/`…Received` reason.
 *
 * @module
 */

/** Counters kept per NIC. */
export interface NicStats {
  /** Frames read from the link. */
  framesReceived: number;
  /** Bytes of frames read from the link (Ethernet header included). */
  bytesReceived: number;
  /** Frames handed to the link for sending. */
  framesSent: number;
  /** Bytes of frames handed to the link. */
  bytesSent: number;
  /** Frames the link refused to send (queue full, link down, write error). */
  txErrors: number;
  /** Frames shorter than an Ethernet header. */
  runtFramesReceived: number;
  /** Frames whose destination MAC is neither ours, broadcast, nor a group we joined. */
  notForUsFramesReceived: number;
  /** Received frames with EtherType IPv4 (0x0800). */
  ipv4FramesReceived: number;
  /** Received frames with EtherType ARP (0x0806). */
  arpFramesReceived: number;
  /** Received frames with EtherType IPv6 (0x86dd). */
  ipv6FramesReceived: number;
  /** Received 802.1Q/802.1ad tagged frames, dropped: VLANs are not supported yet. */
  vlanTaggedFramesDropped: number;
  /** Received frames with an EtherType tapir does not handle, dropped. */
  unknownEtherTypeFramesDropped: number;
}

/** A zeroed {@link NicStats}. */
export function newNicStats(): NicStats {
  return {
    framesReceived: 0,
    bytesReceived: 0,
    framesSent: 0,
    bytesSent: 0,
    txErrors: 0,
    runtFramesReceived: 0,
    notForUsFramesReceived: 0,
    ipv4FramesReceived: 0,
    arpFramesReceived: 0,
    ipv6FramesReceived: 0,
    vlanTaggedFramesDropped: 0,
    unknownEtherTypeFramesDropped: 0,
  };
}

/** Counters kept for the whole stack. */
export interface StackStats {
  /** Frames for protocols tapir does not implement yet, dropped (all NICs). */
  unknownEtherTypeFramesDropped: number;
  /** Packets dropped because the buffer pool was exhausted. */
  bufferPoolExhausted: number;
}

/** A zeroed {@link StackStats}. */
export function newStackStats(): StackStats {
  return { unknownEtherTypeFramesDropped: 0, bufferPoolExhausted: 0 };
}
