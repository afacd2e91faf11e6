// The broker's end of the console's PeerConnection, for the browser tests.
// Loaded by the fake broker's /peer page in a second tab of the same
// Chromium: it offers a canvas "desktop" as video plus the two negotiated
// data channels (control id 0, input id 1), plays the broker's part on the
// control channel, the host's on a files channel, and records everything
// the console sends.
//
// Tests drive it through page.evaluate on window.fake.

const W = 1920;
const H = 1080;

const fake = {
  pc: null,
  control: null,
  input: null,
  /** Every message from the console in arrival order: {ch, msg} or {ch, bytes}. */
  log: [],
  /** The channels the console opened (files, shell-1, …), by label. */
  opened: {},
  /** How to answer {"type":"control","enabled":true}: grant, or refuse with reason. */
  policy: { grant: true, reason: 'This session is view-only for you.' },
  remoteClipboard: 'Remote clipboard: \\\\fs01\\finance\\Q3 report.xlsx',

  /**
   * Creates the PeerConnection and returns its offer (all candidates
   * included). With sharing false no frames go out until setSharing(true):
   * the broker forwards nothing before the user allows view.
   */
  async offer({ sharing = true } = {}) {
    const canvas = document.createElement('canvas');
    canvas.width = W;
    canvas.height = H;
    const g = canvas.getContext('2d');
    drawDesktop(g);
    // Only the taskbar changes, 15 times a second, like a desktop with a clock and a progress bar.
    setInterval(() => drawTaskbar(g), 66);

    const stream = canvas.captureStream(15);
    const [track] = stream.getVideoTracks();
    track.contentHint = 'detail'; // a desktop: keep the resolution, like the host does
    const pc = new RTCPeerConnection();
    fake.pc = pc;
    window.peer = pc;
    const { sender } = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    fake.sender = sender;
    fake.track = track;
    if (!sharing) await sender.replaceTrack(null);

    fake.control = pc.createDataChannel('control', { negotiated: true, id: 0, ordered: true });
    fake.input = pc.createDataChannel('input', { negotiated: true, id: 1, ordered: true });
    fake.input.binaryType = 'arraybuffer';
    fake.control.addEventListener('message', (e) => onControl(e.data));
    pc.addEventListener('datachannel', (e) => {
      fake.opened[e.channel.label] = e.channel;
      if (e.channel.label === 'files') serveFiles(e.channel);
    });
    fake.input.addEventListener('message', (e) => {
      fake.log.push({ ch: 'input', bytes: [...new Uint8Array(e.data)] });
    });

    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') return done();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
      setTimeout(done, 3000);
    });
    return pc.localDescription.sdp;
  },

  accept(sdp) {
    return fake.pc.setRemoteDescription({ type: 'answer', sdp });
  },

  /** Resolves once both data channels are open. */
  channelsOpen() {
    const open = (ch) => (ch.readyState === 'open' ? Promise.resolve() : new Promise((ok) => ch.addEventListener('open', ok, { once: true })));
    return Promise.all([open(fake.control), open(fake.input)]);
  },

  send(msg) {
    fake.control.send(JSON.stringify(msg));
  },

  /** Starts or stops sending frames, as the broker does on a grant or a pause. */
  setSharing(on) {
    return fake.sender.replaceTrack(on ? fake.track : null);
  },

  clear() {
    fake.log.length = 0;
  },

  /** The user's shared folder, served on the files channel: name → bytes. */
  files: {},
  /** The first download stops after this many bytes (0: never stops). */
  stallAt: 0,
  /** The offsets downloads were asked from, in order. */
  gets: [],
};

// serveFiles plays the host's part of the files protocol: listings, and
// downloads from an offset, chunk by chunk, ending with the SHA-256.
function serveFiles(ch) {
  ch.binaryType = 'arraybuffer';
  const reply = (msg) => ch.send(JSON.stringify(msg));
  ch.addEventListener('message', async (e) => {
    const msg = JSON.parse(e.data);
    if (msg.type === 'list') {
      reply({ type: 'listing', path: '.', entries: Object.entries(fake.files).map(([name, b]) => ({ name, size: b.length, kind: 'file', mtime: 1764720000 })) });
      return;
    }
    if (msg.type !== 'get') return;
    const data = fake.files[msg.path];
    const offset = msg.offset ?? 0;
    fake.gets.push(offset);
    reply({ type: 'meta', name: msg.path, size: data.length, offset });
    const stop = fake.stallAt && fake.gets.length === 1 ? fake.stallAt : data.length;
    for (let at = offset; at < stop; at += 16 * 1024) ch.send(data.slice(at, Math.min(at + 16 * 1024, stop)));
    if (stop < data.length) return;
    const sum = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
    reply({ type: 'done', sha256: [...sum].map((b) => b.toString(16).padStart(2, '0')).join('') });
  });
}

function onControl(data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    msg = { unparsable: String(data) };
  }
  fake.log.push({ ch: 'control', msg });
  if (msg.type === 'control') {
    if (!msg.enabled) fake.send({ type: 'control', enabled: false });
    else if (fake.policy.grant) fake.send({ type: 'control', enabled: true });
    else fake.send({ type: 'control', enabled: false, reason: fake.policy.reason });
  }
  if (msg.type === 'clipboard.request') fake.send({ type: 'clipboard', text: fake.remoteClipboard });
}

// A desktop with known landmarks: a mail window and an error dialog whose
// OK button spans x 1160–1280, y 575–615.
function drawDesktop(g) {
  const bg = g.createLinearGradient(0, 0, W, H);
  bg.addColorStop(0, '#1e3a5f');
  bg.addColorStop(1, '#3b6e8f');
  g.fillStyle = bg;
  g.fillRect(0, 0, W, H);
  g.fillStyle = '#fff';
  g.fillRect(180, 110, 1180, 760);
  g.fillStyle = '#0f4c81';
  g.fillRect(180, 110, 1180, 44);
  g.fillStyle = '#fff';
  g.font = '20px sans-serif';
  g.fillText('Inbox \u2014 Mail', 204, 139);
  g.fillStyle = '#f3f4f6';
  g.fillRect(180, 154, 260, 716);
  g.fillStyle = '#374151';
  ['Inbox', 'Drafts', 'Sent', 'Archive'].forEach((f, i) => g.fillText(f, 210, 200 + i * 40));
  for (let i = 0; i < 12; i++) {
    g.fillStyle = i === 1 ? '#e0ecf8' : '#fff';
    g.fillRect(440, 154 + i * 60, 920, 60);
    g.fillStyle = '#111827';
    g.fillText(`Quarterly report ${i + 1}`, 470, 190 + i * 60);
    g.fillStyle = '#6b7280';
    g.fillText('Finance team \u00b7 attachments', 800, 190 + i * 60);
  }
  g.fillStyle = 'rgba(0,0,0,0.25)';
  g.fillRect(708, 408, 620, 240);
  g.fillStyle = '#fff';
  g.fillRect(700, 400, 620, 240);
  g.fillStyle = '#b91c1c';
  g.font = 'bold 24px sans-serif';
  g.fillText('Cannot open attachment', 740, 460);
  g.fillStyle = '#374151';
  g.font = '19px sans-serif';
  g.fillText('Error 0x80070005: Access is denied.', 740, 505);
  g.fillStyle = '#0f4c81';
  g.fillRect(1160, 575, 120, 40);
  g.fillStyle = '#fff';
  g.fillText('OK', 1205, 602);
  drawTaskbar(g);
}

function drawTaskbar(g) {
  g.fillStyle = '#111827';
  g.fillRect(0, 1032, W, 48);
  g.fillStyle = '#e5e7eb';
  g.font = '18px sans-serif';
  g.fillText(new Date().toLocaleTimeString(), 1790, 1063);
  // "Syncing" progress, so that frames keep coming.
  const t = (performance.now() / 4000) % 1;
  g.fillStyle = '#9ca3af';
  g.font = '15px sans-serif';
  g.fillText('OneDrive \u2014 syncing', 1440, 1061);
  g.fillStyle = '#374151';
  g.fillRect(1600, 1052, 160, 6);
  g.fillStyle = '#60a5fa';
  g.fillRect(1600, 1052, Math.round(160 * t), 6);
}

window.fake = fake;
