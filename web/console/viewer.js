// The viewer's connection to one session: signaling over /ws/viewer and one
// RTCPeerConnection with the broker, which relays the host's screen.
//
// Protocol (v1): every message is {v, type, id, session, payload}.
//   → hello {version, session, role:"viewer"}
//   ← welcome {session, state}   ← offer {sdp}   → answer {sdp}
//   ← state {state, host, host_silent_since?} ← ended {reason, scope} ← error {code, message}
//     scope: "session" when the session is over for everyone, "connection" when
//     only this connection was cut off (signed out, key revoked, role changed)
//     host_silent_since: the broker hears nothing from the user's computer
//     (frozen, or its network dropped) since then; absent while it answers
//   ← permissions {granted, paused, pending, message}: what the user allows now
//   → permission.request {permissions}: ask the user for more
// Unknown types are ignored. The broker's offer carries all its ICE
// candidates and so does our answer (no trickle): we wait for gathering to
// finish, at most ICE_GATHER_MS.
//
// The same offer carries two data channels, negotiated out of band with
// fixed ids (internal/protocol): `control` (id 0, JSON text) and `input`
// (id 1, binary). Each side creates them itself, so this page does before it
// applies the offer.

const PROTOCOL_VERSION = 1;
const ICE_GATHER_MS = 2000;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10000;
// A socket whose broker stopped answering (frozen, or the network between
// drops everything) never closes by itself: the page pings it (PING_MS)
// and gives it up when a ping has had no answer for SILENCE_MS, or when a
// new one has not been welcomed within CONNECT_MS, looking every CHECK_MS.
// A frozen broker is then named within about 22 s: before the user's
// computer gives the session up (30 s of silence), so that the page that
// says so is also the one that goes on when the broker answers again.
const PING_MS = 5000;
const SILENCE_MS = 8000;
const CONNECT_MS = 6000;
const CHECK_MS = 1000;
const CLOSE_REFUSED = 4003; // the broker's close code for a refused hello

export const CHANNEL_CONTROL = { label: 'control', id: 0 };
export const CHANNEL_INPUT = { label: 'input', id: 1 };

/**
 * Connection states, as shown on the badge:
 *   connecting    reaching the broker / negotiating media
 *   waiting       the broker is up, the host has not joined (or left)
 *   live          media is flowing
 *   reconnecting  signaling or media dropped; trying again
 *   ended         the session is over (final)
 */
export class ViewerConnection {
  /**
   * @param {object} opts
   * @param {string} opts.session session id
   * @param {(state: string) => void} [opts.onState]
   * @param {(host: object) => void} [opts.onHost] host info from state messages
   * @param {(stream: MediaStream) => void} [opts.onStream]
   * @param {(reason: string, how?: {refused?: boolean, missed?: boolean}) => void} [opts.onEnded]
   *   refused: the broker let this viewer go (the user declined it), the session goes on;
   *   missed: it ended while this page was away, and the broker's refusal does not say why
   * @param {(err: {code: string, message: string}, fatal: boolean) => void} [opts.onError]
   * @param {(attempt: number) => void} [opts.onRetry] before each reconnection attempt
   * @param {() => void} [opts.onWelcome] on each welcome: the broker starts afresh with this viewer
   * @param {(since: number) => void} [opts.onHostSilent] with each state: since when (ms since
   *   the epoch) the user's computer has not answered the broker, 0 while it answers
   * @param {(p: {granted: string[], paused: boolean, pending: boolean, message: string}) => void} [opts.onPermissions]
   *   the user's consent, whenever the broker tells it
   * @param {(ch: {control: RTCDataChannel, input: RTCDataChannel}) => void} [opts.onChannels]
   *   for each new PeerConnection, with its (not yet open) data channels
   */
  constructor(opts) {
    this.session = opts.session;
    this.cb = opts;
    this.ws = null;
    this.pc = null;
    this.pcWs = null; // the signaling socket the current PC was negotiated on
    this.control = null; // the current PC's data channels
    this.input = null;
    this.welcomed = false;
    this.everWelcomed = false;
    this.hostState = '';
    this.ended = false;
    this.closed = false;
    this.attempt = 0;
    this.retryTimer = 0;
    this.state = '';
    this.seq = 0;
  }

  start() {
    this.connect();
    this.update();
  }

  /** Stops everything; no callbacks after this. */
  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.closeSocket();
    this.closePeer();
  }

  /**
   * Marks the session over (e.g. after ending it through the API). how is
   * passed on to onEnded.
   */
  markEnded(reason, how) {
    if (this.ended || this.closed) return;
    this.ended = true;
    clearTimeout(this.retryTimer);
    this.closeSocket();
    this.closePeer();
    this.update();
    this.cb.onEnded?.(reason, how);
  }

  // ---- signaling -----------------------------------------------------------

  connect() {
    if (this.closed || this.ended) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws/viewer`);
    this.ws = ws;
    this.welcomed = false;
    this.pingAt = 0;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.checkAlive(ws), CHECK_MS);
    this.connectedAt = performance.now();

    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      this.send('hello', { version: PROTOCOL_VERSION, session: this.session, role: 'viewer' });
    });
    ws.addEventListener('message', (e) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return; // not JSON: ignore, as any unknown message
      }
      this.heardAt = performance.now();
      if (msg && typeof msg === 'object') this.handle(msg, ws);
    });
    ws.addEventListener('close', (e) => {
      if (ws !== this.ws) return;
      const wasWelcomed = this.welcomed;
      this.ws = null;
      this.welcomed = false;
      clearInterval(this.heartbeat);
      if (e.code === CLOSE_REFUSED) {
        // The broker refused the hello (its error message came first), or
        // let this viewer go because the user declined it.
        this.ended = true;
        this.closePeer();
        this.update();
        if (wasWelcomed) this.cb.onEnded?.(e.reason || '', { refused: true });
        return;
      }
      this.scheduleReconnect();
      this.update();
    });
  }

  /**
   * Pings the broker on ws, or gives ws up when it has not been welcomed in
   * time or its last ping went unanswered for too long. Timers in a hidden
   * tab may run only once a minute: silence counts only after a ping.
   */
  checkAlive(ws) {
    if (ws !== this.ws) return;
    const now = performance.now();
    if (!this.welcomed) {
      if (now - this.connectedAt > CONNECT_MS) this.abandon(ws);
      return;
    }
    if (this.pingAt && this.heardAt < this.pingAt) {
      if (now - this.pingAt > SILENCE_MS) this.abandon(ws);
      return;
    }
    if (now - this.pingAt >= PING_MS && this.send('ping', {})) this.pingAt = now;
  }

  /**
   * Gives up a socket that stopped answering, as if it had closed, and the
   * media connection made on it: the broker behind may be frozen, and what
   * waits on that connection (keys, clicks) would reach the user's
   * computer when it wakes. The next socket brings a new one.
   */
  abandon(ws) {
    this.ws = null;
    this.welcomed = false;
    clearInterval(this.heartbeat);
    ws.close();
    this.closePeer();
    this.scheduleReconnect();
    this.update();
  }

  /** Sends one message; false when the socket is not open. */
  send(type, payload) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.seq += 1;
    this.ws.send(JSON.stringify({
      v: PROTOCOL_VERSION,
      type,
      id: `c${Date.now().toString(36)}${this.seq}`,
      session: this.session,
      payload,
    }));
    return true;
  }

  /** Asks the user for more permissions; false when not connected. */
  requestPermissions(permissions) {
    return this.welcomed && this.send('permission.request', { permissions });
  }

  handle(msg, ws) {
    const p = msg.payload ?? {};
    switch (msg.type) {
      case 'welcome':
        this.welcomed = true;
        this.everWelcomed = true;
        this.attempt = 0;
        this.hostState = p.state || this.hostState;
        this.cb.onWelcome?.();
        if (p.host) this.cb.onHost?.(p.host);
        if (p.state === 'ended') {
          this.markEnded(p.reason || '');
          return;
        }
        break;
      case 'offer':
        if (typeof p.sdp === 'string') this.answer(p.sdp, ws);
        break;
      case 'state':
        if (p.state) this.hostState = p.state;
        if (p.host) this.cb.onHost?.(p.host);
        this.cb.onHostSilent?.(Date.parse(p.host_silent_since ?? '') || 0);
        if (p.state === 'ended') {
          this.markEnded(p.reason || '');
          return;
        }
        break;
      case 'permissions':
        this.cb.onPermissions?.({
          granted: Array.isArray(p.granted) ? p.granted.filter((x) => typeof x === 'string') : [],
          paused: p.paused === true,
          pending: p.pending === true,
          message: typeof p.message === 'string' ? p.message : '',
        });
        return;
      case 'observers':
        this.cb.onObservers?.(Array.isArray(p.observers) ? p.observers : []);
        return;
      case 'ended':
        // scope "connection": only this page was cut off (its login ended,
        // its account changed); the session goes on for the others.
        this.markEnded(p.reason || '', { cutOff: p.scope === 'connection' });
        return;
      case 'error': {
        if (p.code === 'session_ended') {
          this.markEnded(p.message || '', { missed: true });
          return;
        }
        // Before welcome an error means this session cannot be opened
        // (unknown, not allowed): retrying would not help.
        const fatal = !this.welcomed;
        this.cb.onError?.({ code: p.code || 'error', message: p.message || 'The broker reported an error.' }, fatal);
        if (fatal) {
          this.ended = true;
          this.closeSocket();
          this.closePeer();
        }
        break;
      }
      default:
        return; // unknown type: forward compatible
    }
    this.update();
  }

  scheduleReconnect() {
    if (this.closed || this.ended) return;
    clearTimeout(this.retryTimer);
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.cb.onRetry?.(this.attempt);
  }

  closeSocket() {
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    clearInterval(this.heartbeat);
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'viewer closed');
  }

  // ---- media ---------------------------------------------------------------

  async answer(sdp, ws) {
    // An offer on the socket that negotiated the current PC renegotiates it;
    // an offer on a new socket is for a new broker-side PC.
    let pc = this.pc;
    if (!pc || this.pcWs !== ws || pc.connectionState === 'failed' || pc.connectionState === 'closed') {
      this.closePeer();
      pc = this.newPeer();
      this.pcWs = ws;
    }
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await iceGatheringDone(pc, ICE_GATHER_MS);
      if (pc !== this.pc || ws !== this.ws) return; // superseded meanwhile
      this.send('answer', { sdp: pc.localDescription.sdp });
    } catch (err) {
      if (pc !== this.pc) return;
      this.cb.onError?.({ code: 'negotiation_failed', message: `Could not set up the video connection: ${err.message}` }, false);
      // Start over on a fresh signaling connection, which brings a new offer.
      this.closeSocket();
      this.closePeer();
      this.scheduleReconnect();
      this.update();
    }
  }

  newPeer() {
    // No ICE servers: the broker is reachable directly and sends its own candidates.
    const pc = new RTCPeerConnection();
    this.pc = pc;
    const channel = ({ label, id }) => pc.createDataChannel(label, { negotiated: true, id, ordered: true });
    this.control = channel(CHANNEL_CONTROL);
    this.input = channel(CHANNEL_INPUT);
    this.input.binaryType = 'arraybuffer';
    this.cb.onChannels?.({ control: this.control, input: this.input });
    pc.addEventListener('track', (e) => {
      if (pc !== this.pc) return;
      this.cb.onStream?.(e.streams[0] ?? new MediaStream([e.track]));
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'failed') {
        // Media is gone for good on this PC: a new signaling round brings a new one.
        this.closeSocket();
        this.scheduleReconnect();
      }
      this.update();
    });
    return pc;
  }

  closePeer() {
    const pc = this.pc;
    this.pc = null;
    this.pcWs = null;
    this.control = null;
    this.input = null;
    if (pc) pc.close();
  }

  // ---- state ---------------------------------------------------------------

  computeState() {
    if (this.ended) return 'ended';
    if (!this.welcomed) return this.everWelcomed ? 'reconnecting' : 'connecting';
    if (this.hostState === 'waiting') return 'waiting';
    const pcState = this.pc?.connectionState;
    if (pcState === 'disconnected' || pcState === 'failed') return 'reconnecting';
    if (pcState === 'connected') return 'live';
    return 'connecting';
  }

  update() {
    if (this.closed) return;
    const next = this.computeState();
    if (next === this.state) return;
    this.state = next;
    this.cb.onState?.(next);
  }
}

/** Resolves when ICE gathering is complete, or after ms, whichever is first. */
function iceGatheringDone(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}
