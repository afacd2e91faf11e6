// Live figures for the session view, from RTCPeerConnection.getStats() once
// a second: frames per second, received bitrate, round-trip time to the
// broker and the decoded resolution.

const INTERVAL_MS = 1000;

/**
 * Polls `getPc()` every second while started and calls `onUpdate(figures)`:
 *   { fps, kbps, rtt, width, height, codec, lossPct }  (null where unknown)
 */
export class StatsMonitor {
  constructor(getPc, onUpdate) {
    this.getPc = getPc;
    this.onUpdate = onUpdate;
    this.timer = 0;
    this.prev = null; // { pc, t, bytes, frames }
    this.busy = false;
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => this.poll(), INTERVAL_MS);
    this.poll();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
    this.prev = null;
  }

  async poll() {
    const pc = this.getPc();
    if (!pc || pc.connectionState === 'closed' || this.busy) return;
    this.busy = true;
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return;
    } finally {
      this.busy = false;
    }
    if (!this.timer) return;
    this.onUpdate(this.figures(pc, report));
  }

  figures(pc, report) {
    let inbound = null;
    let pair = null;
    let transportPair = '';
    const byId = new Map();
    report.forEach((s) => {
      byId.set(s.id, s);
      if (s.type === 'inbound-rtp' && (s.kind === 'video' || s.mediaType === 'video')) {
        if (!inbound || (s.bytesReceived ?? 0) > (inbound.bytesReceived ?? 0)) inbound = s;
      }
      if (s.type === 'transport' && s.selectedCandidatePairId) transportPair = s.selectedCandidatePairId;
    });
    if (transportPair) pair = byId.get(transportPair) ?? null;
    if (!pair) {
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && s.state === 'succeeded' && (s.nominated || s.selected)) pair = s;
      });
    }

    const out = { fps: null, kbps: null, rtt: null, width: null, height: null, codec: null, lossPct: null };
    if (pair && typeof pair.currentRoundTripTime === 'number') out.rtt = Math.round(pair.currentRoundTripTime * 1000);
    if (!inbound) {
      this.prev = null;
      return out;
    }

    const t = inbound.timestamp;
    const bytes = inbound.bytesReceived ?? 0;
    const frames = inbound.framesDecoded ?? 0;
    const prev = this.prev?.pc === pc && this.prev.id === inbound.id ? this.prev : null;
    if (prev && t > prev.t) {
      const dt = (t - prev.t) / 1000;
      out.kbps = Math.max(0, Math.round(((bytes - prev.bytes) * 8) / 1000 / dt));
      if (typeof inbound.framesPerSecond !== 'number') out.fps = Math.max(0, Math.round((frames - prev.frames) / dt));
    }
    if (typeof inbound.framesPerSecond === 'number') out.fps = Math.round(inbound.framesPerSecond);
    else if (!prev) out.fps = null;
    this.prev = { pc, id: inbound.id, t, bytes, frames };

    if (inbound.frameWidth && inbound.frameHeight) {
      out.width = inbound.frameWidth;
      out.height = inbound.frameHeight;
    }
    const codec = inbound.codecId ? byId.get(inbound.codecId) : null;
    if (codec?.mimeType) out.codec = codec.mimeType.replace(/^video\//i, '');
    const lost = inbound.packetsLost ?? 0;
    const got = inbound.packetsReceived ?? 0;
    if (got + lost > 0) out.lossPct = (100 * lost) / (got + lost);
    return out;
  }
}
