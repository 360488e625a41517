// The demo page: join a room, see and hear everyone in it, chat over data
// channels. Everything it does with the server goes through
// switchboard-client.js. `index.html?room=R&nick=N` joins at once.

import { Mesh, SignalingClient } from './switchboard-client.js';

const $ = (sel) => document.querySelector(sel);
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

function updateChat() {
  const open = mesh ? [...mesh.peers.values()].some((p) => p.channel.readyState === 'open') : false;
  $('#chat-input').disabled = !open;
  $('#chat-send').disabled = !open;
}

function nameOf(id) {
  const peer = client && client.peers.get(id);
  return (peer && peer.nick) || (mesh && mesh.peers.get(id)?.nick) || id;
}

async function join(room, nick) {
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

  client = new SignalingClient(serverUrl(), { room, nick });
  mesh = new Mesh(client, { stream: localStream });
  window.demo = { client, mesh, localStream };

  client.addEventListener('state', ({ detail }) => {
    const badge = $('#state');
    badge.dataset.state = detail.state;
    badge.textContent = STATE_TEXT[detail.state] || detail.state;
    if (detail.state === 'reconnecting') notice('The signaling server is unreachable; retrying. Calls already set up go on.');
    else if (detail.state === 'joined') notice(cameraNotice);
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
  history.replaceState(null, '', `?room=${encodeURIComponent(room)}${nick ? `&nick=${encodeURIComponent(nick)}` : ''}`);
}

function leave() {
  if (mesh) mesh.close();
  if (client) client.close();
  if (localStream) for (const t of localStream.getTracks()) t.stop();
  for (const id of [...tiles.keys()]) removeTile(id);
  client = mesh = localStream = null;
  cameraNotice = '';
  notice('');
  $('#join').disabled = false;
  $('#leave').hidden = true;
  $('#room').disabled = false;
  $('#nick').disabled = false;
  updateChat();
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

const params = new URLSearchParams(location.search);
if (params.get('room')) {
  $('#room').value = params.get('room');
  $('#nick').value = params.get('nick') || '';
  join($('#room').value, $('#nick').value);
}
