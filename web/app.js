// The demo page: join a room, see and hear everyone in it, chat over data
// channels. Everything it does with the server goes through
// switchboard-client.js. `index.html?room=R` fills in the room (the link a
// page alone in its room offers to share); `index.html?room=R&nick=N` joins
// at once. A join the server refuses, or a first connection that fails,
// returns to the form with the reason. On a server that requires room
// tokens the form has a token field, filled in from `#token=T` in the
// link: a fragment, which browsers never send to a server, and which the
// page takes out of the address bar at once; the link to share never has
// it.

import { Mesh, SignalingClient } from './switchboard-client.js';

const $ = (sel) => document.querySelector(sel);
const INVITED_ONLY = 'This server admits only invited peers: paste the token your application gave you.';
const STATE_TEXT = {
  idle: 'not connected',
  connecting: 'connecting…',
  joining: 'joining…',
  joined: 'connected',
  reconnecting: 'server unreachable, retrying…',
  closed: 'left',
};

let client = null;
let mesh = null;
let localStream = null;
let cameraNotice = ''; // why there is no local video, if there is none
let known = null; // peer id -> name, as of the last join: null before it
const tiles = new Map(); // peer id (or 'local') -> tile element

function notice(text) {
  const el = $('#notice');
  el.textContent = text || '';
  el.hidden = !text;
}

function serverUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/`;
}

function tile(id, name) {
  let el = tiles.get(id);
  if (!el) {
    el = $('#tile-template').content.firstElementChild.cloneNode(true);
    el.dataset.peer = id;
    tiles.set(id, el);
    $('#tiles').append(el);
  }
  el.querySelector('.name').textContent = name || id;
  return el;
}

function removeTile(id) {
  const el = tiles.get(id);
  if (el) {
    el.querySelector('video').srcObject = null;
    el.remove();
    tiles.delete(id);
  }
}

function setPeerState(id, state) {
  const el = tiles.get(id);
  if (!el) return;
  el.dataset.state = state;
  el.querySelector('.peer-state').textContent = state;
}

function say(from, text, self = false) {
  const li = document.createElement('li');
  li.dataset.from = from;
  if (self) li.className = 'self';
  const who = document.createElement('b');
  who.textContent = `${from}: `;
  li.append(who, document.createTextNode(text));
  $('#chat-log').append(li);
  li.scrollIntoView({ block: 'end' });
}

// A line in the chat from the page itself: who came, who went.
function announce(text) {
  const li = document.createElement('li');
  li.className = 'system';
  li.textContent = text;
  $('#chat-log').append(li);
  li.scrollIntoView({ block: 'end' });
}

function shareLink(room) {
  return `${location.origin}${location.pathname}?room=${encodeURIComponent(room)}`;
}

// Alone in the room: say so, and offer the link that brings others in.
function updateWaiting() {
  const alone = !!client && client.state === 'joined' && client.peers.size === 0;
  $('#waiting').hidden = !alone;
  if (!alone) return;
  const link = shareLink(client.room);
  $('#share-link').href = link;
  $('#share-link').textContent = link;
  $('#copy-link').hidden = !navigator.clipboard;
}

function setBadge(state) {
  const badge = $('#state');
  badge.dataset.state = state;
  badge.textContent = STATE_TEXT[state] || state;
}

function updateChat() {
  const open = mesh ? [...mesh.peers.values()].some((p) => p.channel.readyState === 'open') : false;
  $('#chat-input').disabled = !open;
  $('#chat-send').disabled = !open;
}

function nameOf(id) {
  const peer = client && client.peers.get(id);
  return (peer && peer.nick) || (mesh && mesh.peers.get(id)?.nick) || id;
}

// The token field: shown once a token is needed or given.
function showTokenField() {
  $('#token-field').hidden = false;
}

async function join(room, nick) {
  const token = $('#token').value.trim();
  notice('');
  $('#join').disabled = true;
  try {
    localStream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (err) {
    localStream = null;
    const why = err.name === 'NotAllowedError' ? 'access to the camera and microphone was denied'
      : err.name === 'NotFoundError' ? 'no camera or microphone was found'
        : `the camera could not be opened (${err.name})`;
    cameraNotice = `Joining without video: ${why}. You can still see the others and chat.`;
    notice(cameraNotice);
  }
  const me = tile('local', `${nick || 'you'} (you)`);
  me.classList.add('local');
  const video = me.querySelector('video');
  video.muted = true;
  video.srcObject = localStream;

  client = new SignalingClient(serverUrl(), { room, nick, token: token || null });
  mesh = new Mesh(client, { stream: localStream });
  window.demo = { client, mesh, localStream };

  known = null;
  client.addEventListener('state', ({ detail }) => {
    setBadge(detail.state);
    if (detail.state === 'reconnecting') notice('The signaling server is unreachable; retrying. Calls already set up go on.');
    else if (detail.state === 'joined') notice(cameraNotice);
    updateWaiting();
  });
  client.addEventListener('joined', ({ detail }) => {
    const now = new Map(detail.peers.map((p) => [p.id, p.nick || p.id]));
    if (known) {
      // a rejoin after a drop: who came and went while we were away
      for (const [id, name] of known) if (!now.has(id)) announce(`${name} left`);
      for (const [id, name] of now) if (!known.has(id)) announce(`${name} joined`);
    }
    known = now;
    updateWaiting();
  });
  client.addEventListener('peerjoined', ({ detail }) => {
    if (known) known.set(detail.id, detail.nick || detail.id);
    announce(`${detail.nick || detail.id} joined`);
    updateWaiting();
  });
  client.addEventListener('peerleft', ({ detail }) => {
    // our own connection dropped: whether they left, the rejoin will tell
    if (detail.disconnected) return;
    if (known) known.delete(detail.id);
    announce(`${detail.nick || detail.id} left`);
    updateWaiting();
  });
  client.addEventListener('refused', ({ detail }) => {
    if (detail.code === 'unauthorized') {
      // the server requires room tokens: none was given, or this one
      // will not do (expired, for another room)
      showTokenField();
      backToForm(token ? `${INVITED_ONLY} The server did not accept this one: ${detail.message}.` : INVITED_ONLY);
      $('#token').focus();
      return;
    }
    backToForm(`The server refused to let you into room "${room}": ${detail.message} (${detail.code}).`);
  });
  client.addEventListener('disconnected', ({ detail }) => {
    if (known) return; // joined before: the client reconnects by itself
    backToForm(detail.opened
      ? `The connection to the server closed before the room could be joined (code ${detail.code}${detail.reason ? `: ${detail.reason}` : ''}).`
      : 'Could not connect: the server refused the connection or is unreachable.');
  });
  client.addEventListener('error', ({ detail }) => {
    // a candidate or answer for a peer that has just left: nothing to say
    if (detail.code === 'peer_not_found') return;
    notice(`The server refused a message: ${detail.message} (${detail.code})`);
  });
  mesh.addEventListener('peer', ({ detail }) => {
    tile(detail.id, nameOf(detail.id));
    setPeerState(detail.id, detail.pc.connectionState);
  });
  mesh.addEventListener('track', ({ detail }) => {
    const v = tile(detail.id, nameOf(detail.id)).querySelector('video');
    if (v.srcObject !== detail.stream) v.srcObject = detail.stream;
  });
  mesh.addEventListener('peerstate', ({ detail }) => setPeerState(detail.id, detail.state));
  mesh.addEventListener('peerclosed', ({ detail }) => { removeTile(detail.id); updateChat(); });
  mesh.addEventListener('channel', updateChat);
  mesh.addEventListener('data', ({ detail }) => {
    let msg;
    try {
      msg = JSON.parse(detail.data);
    } catch {
      return;
    }
    if (typeof msg.text === 'string') say(nameOf(detail.id), msg.text.slice(0, 2000));
  });

  client.connect();
  $('#leave').hidden = false;
  $('#room').disabled = true;
  $('#nick').disabled = true;
  $('#token').disabled = true;
  // the address bar shows the link to share: the room, not who you are
  // (nor your token)
  history.replaceState(null, '', shareLink(room));
}

function leave() {
  if (mesh) mesh.close();
  if (client) client.close();
  if (localStream) for (const t of localStream.getTracks()) t.stop();
  for (const id of [...tiles.keys()]) removeTile(id);
  client = mesh = localStream = null;
  known = null;
  cameraNotice = '';
  notice('');
  setBadge('idle');
  updateWaiting();
  $('#join').disabled = false;
  $('#leave').hidden = true;
  $('#room').disabled = false;
  $('#nick').disabled = false;
  $('#token').disabled = false;
  updateChat();
}

// Not in the room after all: the form again, saying why.
function backToForm(why) {
  leave();
  notice(why);
  $('#room').focus();
}

$('#join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = $('#room').value.trim();
  if (room) join(room, $('#nick').value.trim());
});
$('#leave').addEventListener('click', leave);
$('#chat-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('#chat-input').value;
  if (!text || !mesh) return;
  if (mesh.broadcast(JSON.stringify({ text })) > 0) {
    say('you', text, true);
    $('#chat-input').value = '';
  }
});

$('#copy-link').addEventListener('click', async () => {
  const button = $('#copy-link');
  try {
    await navigator.clipboard.writeText($('#share-link').href);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed: select the link';
  }
  setTimeout(() => { button.textContent = 'Copy link'; }, 2000);
});

// A token comes in the fragment, never in the query string (which servers
// and proxies log); it leaves the address bar (and the history) at once.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get('token')) {
  $('#token').value = fragment.get('token');
  showTokenField();
  history.replaceState(null, '', `${location.pathname}${location.search}`);
}

const params = new URLSearchParams(location.search);
if (params.get('room')) {
  $('#room').value = params.get('room');
  $('#nick').value = params.get('nick') || '';
  if (params.has('nick')) join($('#room').value, $('#nick').value);
  else $('#nick').focus();
}
