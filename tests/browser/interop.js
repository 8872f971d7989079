// Browser side of the PeerNS browser interop tests (tests/tests/browser_interop.rs).
//
// The page is remote-controlled by the Rust test over a WebSocket at ws://127.0.0.1:<ctl>/ (the
// `ctl` query parameter). Commands are JSON `{req, op, ...args}`; every command gets one reply
// `{type: 'reply', req, ok, result | error}`. The page also sends `{type: 'hello', ...}` once and
// `{type: 'log', text}` lines, which the Rust side prints.
//
// Ops:
//   register {id, server}          new peerjs.Peer(id) on the signaling server at 127.0.0.1:server,
//                                  which echoes every message of every incoming connection and
//                                  checks it against gen() (native -> browser cases)
//   ping {id, to, serialization, n} connect to `to`, send gen(serialization, 0..n) one at a time,
//                                  each waiting for its echo, check order and content, close
//                                  (browser -> native cases)
//   stats {id}                     what the echo side saw on its incoming connections (counts,
//                                  mismatches, JS types of the received values, ICE pair)
//   destroy {id}                   peer.destroy()
//   answerCalls {id}               answer every incoming media call with the fake camera and
//                                  microphone (320x240), playing what arrives (browser_media.rs)
//   call {id, to}                  peer.call(to, fake camera + microphone); resolves once the
//                                  remote stream arrived
//   call {..., rotation}           the same, the camera's frames saying they must be turned
//                                  `rotation` degrees (as a phone's camera says it)
//   mediaStats {id}                getStats of the last media call: inbound/outbound video and
//                                  inbound audio (framesDecoded, size, codec), and the size
//                                  of the remote picture as its <video> shows it
//   hangUp {id}                    close every media call of `id`
//
// gen() must stay identical to `message()` in tests/tests/browser_interop.rs.

'use strict';

const CTL = new URLSearchParams(location.search).get('ctl');
const ws = new WebSocket(`ws://127.0.0.1:${CTL}/`);
const peers = new Map(); // id -> { peer, conns: [stats of incoming connections] }

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const send = (o) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(o));
function log(text) {
  console.log('[interop] ' + text);
  send({ type: 'log', text: String(text) });
}
function withTimeout(p, ms, what) {
  let t;
  const timeout = new Promise((_, rej) => {
    t = setTimeout(() => rej(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

// ---- the messages (same definition as the Rust side) --------------------------------------------

function bytes(i, len) {
  const b = new Uint8Array(len);
  for (let j = 0; j < len; j++) b[j] = (i * 7 + j * 31) & 255;
  return b;
}

/** Message number `i` of a run with `serialization` ('json' or 'binary'). */
function gen(serialization, i) {
  if (serialization === 'binary') {
    if (i === 5) return bytes(i, 0);
    if (i === 100) return { seq: i, kind: 'big-text', text: 'peerns é✓🚀 '.repeat(2000) + i }; // 34 kB: chunked
    if (i === 150) return bytes(i, 40000); // chunked
    if (i % 4 === 1) return bytes(i, i % 50);
  } else if (i === 100) {
    return { seq: i, kind: 'big-text', text: 'x'.repeat(15900) + 'é✓🚀' }; // just under PeerJS's JSON limit
  }
  if (i % 4 === 2) {
    return {
      seq: i, kind: 'mixed', f: i + 0.5, neg: -i, big: 2 ** 40 + i, t: true, n: null,
      arr: [i, 's', false, 1.25], nested: { u: 'héllo ✓ 🚀' },
    };
  }
  return { seq: i, text: `hello ${i}` };
}

const isBytes = (x) => x instanceof ArrayBuffer || ArrayBuffer.isView(x);
const u8 = (x) => (x instanceof ArrayBuffer ? new Uint8Array(x) : new Uint8Array(x.buffer, x.byteOffset, x.byteLength));

/** Deep equality; key order does not matter, byte payloads compare by content. */
function same(a, b) {
  if (isBytes(a)) {
    if (!isBytes(b)) return false;
    const x = u8(a), y = u8(b);
    if (x.length !== y.length) return false;
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false;
    return true;
  }
  if (a === null || typeof a !== 'object') return a === b;
  if (b === null || typeof b !== 'object' || isBytes(b)) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, k) => same(x, b[k]));
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
}

function describe(x) {
  if (isBytes(x)) {
    const b = u8(x);
    const head = Array.from(b.slice(0, 8), (v) => v.toString(16).padStart(2, '0')).join('');
    return `${x.constructor.name}[${b.length}] ${head}…`;
  }
  let s;
  try { s = JSON.stringify(x); } catch (e) { s = String(x); }
  s = `${typeof x} ${s}`;
  return s.length > 200 ? s.slice(0, 200) + `… (${s.length} chars)` : s;
}

function pct(sorted, p) { return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]; }
function summ(arr) {
  const s = [...arr].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s[s.length - 1], min: s[0] };
}

/** The nominated ICE pair, e.g. `127.0.0.1:40000/udp/prflx <-> 127.0.0.1:50000/udp/host`. */
async function pairInfo(c) {
  try {
    const st = await c.peerConnection.getStats();
    const m = new Map();
    st.forEach((r) => m.set(r.id, r));
    for (const r of m.values()) {
      if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') {
        const l = m.get(r.localCandidateId), rr = m.get(r.remoteCandidateId);
        return `${l.address}:${l.port}/${l.protocol}/${l.candidateType} <-> ${rr.address}:${rr.port}/${rr.protocol}/${rr.candidateType}`;
      }
    }
    return 'no nominated pair';
  } catch (e) {
    return 'getStats failed: ' + e;
  }
}

// ---- ops -----------------------------------------------------------------------------------------

function entry(id) {
  const e = peers.get(id);
  if (!e) throw new Error(`no peer ${id} on this page`);
  return e;
}

async function register({ id, server }) {
  const t0 = now();
  const peer = new peerjs.Peer(id, {
    host: '127.0.0.1', port: server, path: '/', key: 'peerjs', secure: false,
    config: { iceServers: [] }, debug: 2,
  });
  await withTimeout(new Promise((res, rej) => {
    peer.once('open', res);
    peer.once('error', (e) => rej(new Error(`peer error ${e.type}: ${e.message}`)));
  }), 10000, `register ${id}`);
  const ms = now() - t0;
  const e = { peer, conns: [] };
  peers.set(id, e);
  peer.on('error', (err) => log(`${id}: peer error ${err.type}: ${err.message}`));
  peer.on('connection', (c) => {
    const s = {
      peer: c.peer, connectionId: c.connectionId, label: c.label, serialization: c.serialization,
      reliable: c.reliable, metadata: c.metadata ?? null, open: false, closed: false,
      received: 0, mismatches: [], pair: null, types: {},
    };
    e.conns.push(s);
    c.on('open', () => { s.open = true; });
    c.on('close', () => { s.closed = true; });
    c.on('error', (err) => log(`${id}: connection ${c.connectionId} error ${err.type}: ${err.message}`));
    c.on('data', (d) => {
      const want = gen(s.serialization, s.received);
      if (!same(want, d) && s.mismatches.length < 5) {
        s.mismatches.push(`message ${s.received}: expected ${describe(want)}, got ${describe(d)}`);
      }
      s.received++;
      const type = d === null ? 'null' : isBytes(d) ? d.constructor.name : typeof d;
      s.types[type] = (s.types[type] || 0) + 1;
      c.send(d);
      if (s.received === 1) pairInfo(c).then((p) => { s.pair = p; });
    });
  });
  return { ms };
}

async function ping({ id, to, serialization, n }) {
  const { peer } = entry(id);
  const t0 = now();
  const c = peer.connect(to, { serialization, reliable: true });
  // When the answer and the candidates of this connection arrived (diagnostics).
  const signals = [];
  const onSignal = (m) => {
    if (m.payload && m.payload.connectionId === c.connectionId) signals.push(`${m.type}@${(now() - t0).toFixed(1)}`);
  };
  peer.socket.on('message', onSignal);
  const inbox = [];
  let wake = null, closed = false;
  const poke = () => { if (wake) { const w = wake; wake = null; w(); } };
  c.on('data', (d) => { inbox.push(d); poke(); });
  c.on('close', () => { closed = true; poke(); });
  c.on('error', (err) => log(`ping ${serialization}: connection error ${err.type}: ${err.message}`));
  try {
    await withTimeout(new Promise((res, rej) => {
      c.once('open', res);
      c.once('error', (err) => rej(new Error(`connection error ${err.type}: ${err.message}`)));
    }), 20000, `open ${serialization} connection to ${to}`);
    const connectMs = now() - t0;
    const next = async (i) => {
      while (!inbox.length) {
        if (closed) throw new Error(`connection closed while waiting for echo ${i}`);
        await withTimeout(new Promise((r) => { wake = r; }), 10000, `echo of message ${i}`);
      }
      return inbox.shift();
    };
    const rtts = [];
    for (let i = 0; i < n; i++) {
      const m = gen(serialization, i);
      const t = now();
      c.send(m);
      const d = await next(i);
      rtts.push(now() - t);
      if (!same(m, d)) throw new Error(`echo ${i} differs: sent ${describe(m)}, got ${describe(d)}`);
    }
    const pair = await pairInfo(c);
    await sleep(50);
    if (inbox.length) throw new Error(`${inbox.length} unexpected extra message(s), first: ${describe(inbox[0])}`);
    return { n, connectMs, rtt: summ(rtts), pair, connectionId: c.connectionId, signals: signals.join(' ') };
  } finally {
    peer.socket.off('message', onSignal);
    c.close();
  }
}


// ---- media calls (tests/tests/browser_media.rs) ---------------------------------------------------

/** The fake camera (320x240) and microphone (`--use-fake-device-for-media-stream`). */
function localStream() {
  return navigator.mediaDevices.getUserMedia({
    video: { width: 320, height: 240, frameRate: 30 }, audio: true,
  });
}

/** Plays a remote stream in a muted <video> (so every received track has a sink). */
function play(stream) {
  const v = document.createElement('video');
  v.muted = true;
  v.autoplay = true;
  v.playsInline = true;
  v.srcObject = stream;
  document.body.appendChild(v);
  v.play().catch((e) => log(`play: ${e}`));
  return v;
}

function track(e, c) {
  e.calls = e.calls || [];
  e.calls.push(c);
  c.on('error', (err) => log(`media ${c.connectionId} error ${err.type}: ${err.message}`));
  c.on('close', () => log(`media ${c.connectionId} closed`));
  return new Promise((res) => c.on('stream', (s) => { c.video = play(s); res(s); }));
}

async function answerCalls({ id }) {
  const e = entry(id);
  const stream = await localStream();
  e.peer.on('call', (c) => {
    log(`${id}: media call ${c.connectionId} from ${c.peer}`);
    track(e, c);
    c.answer(stream);
  });
  return {};
}

/**
 * The fake camera as a phone's camera sends it: each frame says it must be turned `rotation`
 * degrees clockwise to stand upright (WebRTC then sends it unturned with the rotation in the
 * video-orientation extension, when the call negotiated it), and the microphone.
 */
async function turnedStream(rotation) {
  const cam = await localStream();
  const reader = new MediaStreamTrackProcessor({ track: cam.getVideoTracks()[0] }).readable.getReader();
  const turned = new MediaStreamTrackGenerator({ kind: 'video' });
  const writer = turned.writable.getWriter();
  (async () => {
    for (;;) {
      const { value: frame, done } = await reader.read();
      if (done) return;
      const out = new VideoFrame(frame, { rotation });
      frame.close();
      await writer.write(out);
    }
  })().catch((e) => log(`turned camera: ${e}`));
  return new MediaStream([turned, ...cam.getAudioTracks()]);
}

async function call({ id, to, metadata, rotation }) {
  const e = entry(id);
  const stream = rotation ? await turnedStream(rotation) : await localStream();
  const t0 = now();
  const c = e.peer.call(to, stream, { metadata: metadata || { from: id } });
  const remote = await withTimeout(track(e, c), 15000, `remote stream of the call to ${to}`);
  return { connectionId: c.connectionId, ms: now() - t0, tracks: remote.getTracks().map((t) => t.kind) };
}

async function mediaStats({ id }) {
  const e = entry(id);
  const c = e.calls && e.calls[e.calls.length - 1];
  if (!c || !c.peerConnection) throw new Error(`${id} has no media call`);
  const st = await c.peerConnection.getStats();
  const m = new Map();
  st.forEach((r) => m.set(r.id, r));
  // The picture as shown: a video-orientation extension of 90° or 270° swaps its sides.
  const v = c.video;
  const out = {
    inVideo: null, outVideo: null, inAudio: null,
    shown: v ? { width: v.videoWidth, height: v.videoHeight } : null,
  };
  const codec = (r) => (m.get(r.codecId) || {}).mimeType || null;
  for (const r of m.values()) {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      out.inVideo = {
        framesDecoded: r.framesDecoded || 0, framesReceived: r.framesReceived || 0,
        width: r.frameWidth || 0, height: r.frameHeight || 0, codec: codec(r),
        pliCount: r.pliCount || 0, packetsLost: r.packetsLost || 0,
      };
    } else if (r.type === 'outbound-rtp' && r.kind === 'video') {
      out.outVideo = { framesEncoded: r.framesEncoded || 0, codec: codec(r), width: r.frameWidth || 0 };
    } else if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      out.inAudio = { packetsReceived: r.packetsReceived || 0, codec: codec(r) };
    }
  }
  return out;
}

async function hangUp({ id }) {
  const e = entry(id);
  for (const c of e.calls || []) c.close();
  e.calls = [];
  return {};
}

const ops = {
  register,
  ping,
  answerCalls,
  call,
  mediaStats,
  hangUp,
  async stats({ id }) { return { conns: entry(id).conns }; },
  async destroy({ id }) { entry(id).peer.destroy(); peers.delete(id); return {}; },
};

ws.onopen = () => send({
  type: 'hello', ua: navigator.userAgent, browser: peerjs.util.browser,
  isolated: self.crossOriginIsolated, supports: peerjs.util.supports,
});
ws.onmessage = async (ev) => {
  let cmd;
  try {
    cmd = JSON.parse(ev.data);
    const op = ops[cmd.op];
    if (!op) throw new Error(`unknown op ${cmd.op}`);
    const result = await op(cmd);
    send({ type: 'reply', req: cmd.req, ok: true, result });
  } catch (e) {
    send({ type: 'reply', req: cmd && cmd.req, ok: false, error: String((e && e.stack) || e) });
  }
};
ws.onclose = () => console.log('[interop] control socket closed');
window.addEventListener('error', (e) => log(`page error: ${e.message} at ${e.filename}:${e.lineno}`));
window.addEventListener('unhandledrejection', (e) => log(`unhandled rejection: ${(e.reason && e.reason.stack) || e.reason}`));
