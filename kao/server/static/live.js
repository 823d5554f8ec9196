// kao's web page, the Live tab: the camera (or a chosen video file) streamed to /v1/live over
// a WebSocket, one JPEG frame in flight at a time (frames made meanwhile are dropped), and each
// answer drawn on the very frame it answers (once per answer, so the overlays fit the picture
// and drawing never competes with the frames' encoding): boxes and track ids, names, and the
// overlays (mesh
// wireframe, 68 points, head axes, gaze rays, iris circles, a texture fitted to the mesh);
// attribute bars per track, frames per second and latency. Uses app.js's helpers ($, el, api,
// colorOf, percent, EMOTIONS, KEY_STORAGE).
"use strict";

const LIVE_LONG_SIDE = 640; // frames are sent at most this long (pixels): the detector's size
const LIVE_QUALITY = 0.8; // JPEG quality of the frames sent
const LIVE_RETRY_MS = [1000, 2000, 4000, 8000]; // waits before reconnecting, then the last again
const LANDMARK_OVERLAYS = ["mesh", "points", "axes", "gaze", "iris", "texture"]; // need FaceMesh
const TEXTURE_SIZE = 256;
const LIVE_PAUSE_MS = 250; // wait before the next frame after a 5xx answer

const live = {
  stream: null, // the camera's MediaStream, or null (a file, or stopped)
  running: false,
  socket: null,
  ready: null, // the server's "ready" message: options, triangles, uvs
  inFlight: false,
  pending: null, // the canvas of the frame in flight
  frame: null, // the canvas of the frame last answered
  sentAt: 0,
  answer: null, // the last frame answer
  answered: [], // times (ms) of the answers of the last second
  statsTimer: 0,
  latency: 0,
  retries: 0,
  retryTimer: 0,
  texture: null,
};

/** The overlays ticked, by name (mesh, points, axes, gaze, iris, texture). */
function overlays() {
  const on = new Set();
  for (const box of document.querySelectorAll("#live [data-overlay]")) {
    if (box.checked) on.add(box.dataset.overlay);
  }
  return on;
}

function liveState(state, message = "") {
  $("live").dataset.state = state;
  $("live").querySelector(".status").textContent = message;
}

function liveError(message) {
  const box = $("live").querySelector(".error");
  box.textContent = message;
  box.hidden = !message;
}

/** The /v1/live URL for the options chosen on the page. */
function liveUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({
    attributes: String($("live-attributes").checked),
    landmarks: String(LANDMARK_OVERLAYS.some((name) => overlays().has(name))),
  });
  const collection = $("live-collection").value;
  if (collection) query.set("collection", collection);
  return `${scheme}//${location.host}/v1/live?${query}`;
}

// ---------------------------------------------------------------- the connection

function connect() {
  clearTimeout(live.retryTimer);
  if (live.socket) {
    live.socket.onclose = null;
    live.socket.close();
  }
  live.ready = null;
  live.inFlight = false;
  live.answer = null;
  liveState("connecting", "Connecting to the server…");
  const socket = new WebSocket(liveUrl());
  socket.binaryType = "arraybuffer";
  live.socket = socket;
  let refused = false;
  socket.onopen = () => {
    // The key, or "" (a server that needs one then says so at once instead of waiting for it).
    socket.send(JSON.stringify({ key: localStorage.getItem(KEY_STORAGE) || "" }));
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      live.ready = message;
      live.retries = 0;
      liveError("");
      liveState("live", "");
      sendFrame();
    } else if (message.type === "frame") {
      live.inFlight = false;
      live.answer = message;
      live.frame = live.pending;
      live.latency = performance.now() - live.sentAt;
      live.answered.push(performance.now());
      sendFrame();
      drawAnswer();
      showTracks(message);
    } else if (message.type === "warning") {
      liveState("live", `Names and attributes failed: ${message.error}`);
    } else if (message.type === "error") {
      if (!live.ready) {
        refused = true; // the session was refused: the close that follows is no drop
        liveError(`The server refused the live session: ${message.error}`);
        if (message.status === 401) showKeyBox(NEED_KEY);
      } else {
        live.inFlight = false; // a dropped or bad frame: the next one goes (a busy or failing
        live.latency = performance.now() - live.sentAt; // server: after a pause)
        setTimeout(sendFrame, message.status >= 500 ? LIVE_PAUSE_MS : 0);
      }
    }
  };
  socket.onclose = () => {
    if (live.socket !== socket) return;
    live.socket = null;
    if (!live.running) return;
    if (refused) {
      liveState("refused", "");
      return;
    }
    const wait = LIVE_RETRY_MS[Math.min(live.retries, LIVE_RETRY_MS.length - 1)];
    live.retries += 1;
    liveState("reconnecting", `The connection dropped; reconnecting in ${wait / 1000} s…`);
    live.retryTimer = setTimeout(connect, wait);
  };
}

/** Sends the video's current frame as a JPEG, unless one is in flight or nothing plays. */
function sendFrame() {
  const video = $("live-video");
  const socket = live.socket;
  if (!live.running || live.inFlight || !live.ready || !socket || socket.readyState !== 1) return;
  if (video.readyState < 2 || !video.videoWidth) {
    setTimeout(sendFrame, 50);
    return;
  }
  const scale = Math.min(1, LIVE_LONG_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const grab = document.createElement("canvas");
  grab.width = Math.round(video.videoWidth * scale);
  grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  live.inFlight = true;
  live.pending = grab;
  grab.toBlob((blob) => {
    if (!blob || live.socket !== socket || socket.readyState !== 1) {
      live.inFlight = false;
      return;
    }
    live.sentAt = performance.now();
    socket.send(blob);
  }, "image/jpeg", LIVE_QUALITY);
}

// ---------------------------------------------------------------- sources

async function startCamera() {
  stopLive();
  liveError("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    liveError("This browser gives no camera to this page (a camera needs https or localhost); "
      + "choose a video file instead.");
    return;
  }
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (error) {
    const refusedNames = ["NotAllowedError", "SecurityError", "PermissionDeniedError"];
    liveState("no-camera", "");
    liveError(refusedNames.includes(error.name)
      ? "The camera was refused: allow it for this page in the browser's site settings and "
        + "press Start camera again, or choose a video file."
      : `No camera could be opened (${error.name}: ${error.message}); choose a video file.`);
    return;
  }
  const video = $("live-video");
  video.srcObject = live.stream;
  await startSource(video);
}

async function startFile(file) {
  stopLive();
  liveError("");
  const video = $("live-video");
  video.srcObject = null;
  video.src = URL.createObjectURL(file);
  video.loop = true;
  await startSource(video);
}

async function startSource(video) {
  video.muted = true;
  try {
    await video.play();
  } catch (error) {
    liveError(`The video does not play: ${error.message}`);
    return;
  }
  live.running = true;
  $("live-stop").disabled = false;
  clearInterval(live.statsTimer);
  live.statsTimer = setInterval(showStats, 250);
  connect();
}

function stopLive() {
  live.running = false;
  clearTimeout(live.retryTimer);
  if (live.socket) {
    live.socket.onclose = null;
    live.socket.close();
    live.socket = null;
  }
  if (live.stream) for (const track of live.stream.getTracks()) track.stop();
  live.stream = null;
  const video = $("live-video");
  video.pause();
  if (video.src) URL.revokeObjectURL(video.src);
  video.removeAttribute("src");
  video.srcObject = null;
  live.answer = null;
  live.frame = null;
  clearInterval(live.statsTimer);
  drawAnswer();
  showStats();
  $("live-stop").disabled = true;
  $("live-faces").replaceChildren();
  liveState("stopped", "");
}

// ---------------------------------------------------------------- drawing

/** Draws the frame last answered and its overlays (a blank canvas when none). */
function drawAnswer() {
  const canvas = $("live-canvas");
  const context = canvas.getContext("2d");
  const frame = live.frame;
  if (frame && canvas.width !== frame.width) canvas.width = frame.width;
  if (frame && canvas.height !== frame.height) canvas.height = frame.height;
  context.clearRect(0, 0, canvas.width, canvas.height);
  const drawn = new Set();
  const answer = live.answer;
  if (frame && answer && answer.width) {
    context.drawImage(frame, 0, 0);
    const scale = canvas.width / answer.width;
    for (const face of answer.faces) drawFace(context, face, scale, drawn);
  }
  canvas.dataset.drawn = [...drawn].sort().join(" ");
  canvas.dataset.faces = answer ? String(answer.faces.length) : "0";
}

const scaled = (point, scale) => [point[0] * scale, point[1] * scale];

function drawFace(context, face, scale, drawn) {
  const color = colorOf(face.track_id - 1);
  const [x1, y1, x2, y2] = face.box.map((v) => v * scale);
  const on = overlays();
  const mesh = face.mesh && live.ready && live.ready.triangles ? face.mesh : null;
  if (on.has("texture") && mesh) {
    drawTexture(context, mesh, scale);
    drawn.add("texture");
  }
  context.lineWidth = Math.max(2, scale * 2);
  context.strokeStyle = color;
  context.strokeRect(x1, y1, x2 - x1, y2 - y1);
  drawn.add("boxes");
  if (on.has("mesh") && mesh) {
    context.beginPath();
    for (const [a, b, c] of live.ready.triangles) {
      const [pa, pb, pc] = [a, b, c].map((i) => scaled(mesh[i], scale));
      context.moveTo(...pa);
      context.lineTo(...pb);
      context.lineTo(...pc);
      context.closePath();
    }
    context.lineWidth = 0.5;
    context.strokeStyle = "rgba(120, 255, 200, 0.7)";
    context.stroke();
    drawn.add("mesh");
  }
  if (on.has("points") && face.landmarks_68) {
    context.fillStyle = "#ffe14d";
    for (const point of face.landmarks_68) {
      const [x, y] = scaled(point, scale);
      context.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    drawn.add("points");
  }
  if (on.has("axes") && face.pose) {
    drawAxes(context, face, scale);
    drawn.add("axes");
  }
  if (on.has("iris") && face.iris) {
    drawIris(context, face.iris, scale);
    drawn.add("iris");
  }
  if (on.has("gaze") && face.gaze && face.iris) {
    drawGaze(context, face, scale, x2 - x1);
    drawn.add("gaze");
  }
  const label = `#${face.track_id}${face.identity ? ` ${face.identity}` : ""}`;
  context.font = `${Math.max(14, 16 * scale)}px system-ui, sans-serif`;
  const width = context.measureText(label).width + 8;
  context.fillStyle = color;
  context.fillRect(x1, Math.max(0, y1 - 22 * scale), width, 22 * scale);
  context.fillStyle = "#fff";
  context.fillText(label, x1 + 4, Math.max(16 * scale, y1 - 6 * scale));
}

/** The head's axes from its pose (degrees): red to the subject's left in the image's right,
 * green up, blue toward the camera, from the nose tip, a box-width long. */
function drawAxes(context, face, scale) {
  const rad = Math.PI / 180;
  const [yaw, pitch, roll] = [face.pose.yaw * rad, face.pose.pitch * rad, face.pose.roll * rad];
  // Image frame: x right, y down, z into the screen. R = Rz(roll) Ry(yaw) Rx(pitch).
  const rotate = ([x, y, z]) => {
    [y, z] = [y * Math.cos(pitch) + z * Math.sin(pitch), -y * Math.sin(pitch) + z * Math.cos(pitch)];
    [x, z] = [x * Math.cos(yaw) - z * Math.sin(yaw), x * Math.sin(yaw) + z * Math.cos(yaw)];
    [x, y] = [x * Math.cos(roll) - y * Math.sin(roll), x * Math.sin(roll) + y * Math.cos(roll)];
    return [x, y];
  };
  const origin = scaled(face.keypoints[2], scale);
  const length = (face.box[2] - face.box[0]) * scale * 0.6;
  const axes = [[[1, 0, 0], "#ff4040"], [[0, -1, 0], "#40ff40"], [[0, 0, -1], "#4080ff"]];
  context.lineWidth = 3;
  for (const [axis, color] of axes) {
    const [dx, dy] = rotate(axis);
    context.strokeStyle = color;
    context.beginPath();
    context.moveTo(...origin);
    context.lineTo(origin[0] + dx * length, origin[1] + dy * length);
    context.stroke();
  }
}

/** Each iris: a circle through its 4 contour points around its centre, and its radius (px of
 * the frame sent). */
function drawIris(context, iris, scale) {
  context.strokeStyle = "#00e5ff";
  context.fillStyle = "#00e5ff";
  context.lineWidth = 1.5;
  context.font = `${Math.max(11, 12 * scale)}px system-ui, sans-serif`;
  for (const start of [0, 5]) {
    const centre = iris[start];
    const ring = iris.slice(start + 1, start + 5);
    const radius = ring.reduce((sum, p) => sum + Math.hypot(p[0] - centre[0], p[1] - centre[1]), 0)
      / ring.length;
    const [x, y] = scaled(centre, scale);
    context.beginPath();
    context.arc(x, y, radius * scale, 0, 2 * Math.PI);
    context.stroke();
    context.fillText(`r ${radius.toFixed(1)}`, x - radius * scale, y + radius * scale + 12 * scale);
  }
}

/** A ray from each iris centre along that eye's gaze (yaw right, pitch up, degrees). */
function drawGaze(context, face, scale, length) {
  const rad = Math.PI / 180;
  context.strokeStyle = "#ff3df2";
  context.lineWidth = 2;
  for (const [start, eye] of [[0, face.gaze.right_eye], [5, face.gaze.left_eye]]) {
    const [x, y] = scaled(face.iris[start], scale);
    const dx = Math.sin(eye.yaw * rad) * Math.cos(eye.pitch * rad);
    const dy = -Math.sin(eye.pitch * rad);
    context.beginPath();
    context.moveTo(x, y);
    context.lineTo(x + dx * length, y + dy * length);
    context.stroke();
  }
}

/** A tiger-striped texture drawn by the page, in the canonical face's UV layout (u right, v
 * up): orange fur, black stripes, pale muzzle and eye patches. */
function tigerTexture() {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = TEXTURE_SIZE;
  const c = canvas.getContext("2d");
  const fur = c.createLinearGradient(0, 0, 0, TEXTURE_SIZE);
  fur.addColorStop(0, "#f08a24");
  fur.addColorStop(1, "#d9661a");
  c.fillStyle = fur;
  c.fillRect(0, 0, TEXTURE_SIZE, TEXTURE_SIZE);
  c.fillStyle = "#fbecd4";
  c.beginPath();
  c.ellipse(128, 190, 58, 50, 0, 0, 2 * Math.PI); // muzzle
  c.fill();
  for (const x of [80, 176]) {
    c.beginPath();
    c.ellipse(x, 112, 30, 16, 0, 0, 2 * Math.PI); // around the eyes
    c.fill();
  }
  c.strokeStyle = "#1b1206";
  c.lineCap = "round";
  for (let i = 0; i < 7; i += 1) {
    const y = 18 + i * 13;
    c.lineWidth = 7 - i * 0.6;
    for (const side of [-1, 1]) {
      c.beginPath();
      c.moveTo(128 + side * (10 + i * 4), y);
      c.quadraticCurveTo(128 + side * 60, y + 18, 128 + side * 120, y - 6);
      c.stroke();
    }
  }
  c.lineWidth = 6;
  c.beginPath();
  c.moveTo(128, 10);
  c.lineTo(128, 60);
  c.stroke();
  c.fillStyle = "#1b1206";
  c.beginPath();
  c.ellipse(128, 168, 14, 9, 0, 0, 2 * Math.PI); // nose
  c.fill();
  return canvas;
}

/** The texture mapped onto the face: each mesh triangle takes the texture's triangle under
 * the same canonical UVs (an affine map per triangle), far triangles first. */
function drawTexture(context, mesh, scale) {
  live.texture = live.texture || tigerTexture();
  const { triangles, uvs } = live.ready;
  const order = triangles
    .map((t, i) => [mesh[t[0]][2] + mesh[t[1]][2] + mesh[t[2]][2], i])
    .sort((a, b) => b[0] - a[0]);
  context.save();
  context.globalAlpha = 0.85;
  for (const [, i] of order) {
    const t = triangles[i];
    const [p0, p1, p2] = t.map((v) => scaled(mesh[v], scale));
    const [q0, q1, q2] = t.map((v) => [uvs[v][0] * TEXTURE_SIZE, (1 - uvs[v][1]) * TEXTURE_SIZE]);
    const det = (q1[0] - q0[0]) * (q2[1] - q0[1]) - (q2[0] - q0[0]) * (q1[1] - q0[1]);
    if (Math.abs(det) < 1e-6) continue;
    // The affine map taking q0, q1, q2 to p0, p1, p2.
    const a = ((p1[0] - p0[0]) * (q2[1] - q0[1]) - (p2[0] - p0[0]) * (q1[1] - q0[1])) / det;
    const b = ((p1[1] - p0[1]) * (q2[1] - q0[1]) - (p2[1] - p0[1]) * (q1[1] - q0[1])) / det;
    const c = ((p2[0] - p0[0]) * (q1[0] - q0[0]) - (p1[0] - p0[0]) * (q2[0] - q0[0])) / det;
    const d = ((p2[1] - p0[1]) * (q1[0] - q0[0]) - (p1[1] - p0[1]) * (q2[0] - q0[0])) / det;
    context.save();
    context.beginPath();
    context.moveTo(...p0);
    context.lineTo(...p1);
    context.lineTo(...p2);
    context.closePath();
    context.clip();
    context.setTransform(a, b, c, d, p0[0] - a * q0[0] - c * q0[1], p0[1] - b * q0[0] - d * q0[1]);
    context.drawImage(live.texture, 0, 0);
    context.restore();
  }
  context.restore();
}

// ---------------------------------------------------------------- tracks and figures

function showStats() {
  const now = performance.now();
  live.answered = live.answered.filter((t) => now - t < 1000);
  const answer = live.answer;
  $("live-stats").textContent = live.ready && answer
    ? `${live.answered.length} fps · latency ${Math.round(live.latency)} ms (server `
      + `${Math.round(answer.latency_ms)} ms) · frame ${answer.frame}`
    : "";
}

/** The list of tracks of `answer`: name, age, gender, mask and emotion bars each. */
function showTracks(answer) {
  const items = [...answer.faces].sort((a, b) => a.track_id - b.track_id).map((face) => {
    const facts = [];
    if (face.age != null) facts.push(`${Math.round(face.age)} years`);
    if (face.gender) facts.push(`${face.gender.label} ${percent(face.gender.score)}`);
    if (face.mask) facts.push(face.mask.label === "mask" ? "mask" : "no mask");
    const item = el("li", { "data-track": String(face.track_id), style: {
      borderColor: colorOf(face.track_id - 1) } },
    el("strong", { class: "name", text: `#${face.track_id} ${face.identity || "unknown"}` }),
    el("span", { class: "facts", text: facts.join(" · ") }));
    if (face.emotion) {
      const best = Math.max(...Object.values(face.emotion));
      item.append(el("div", { class: "emotion-bars" }, ...Object.entries(face.emotion).map(
        ([name, p]) => el("div", { class: p === best ? "emotion best" : "emotion" },
          el("span", { text: name }),
          el("span", { class: "bar" }, el("span", { style: { width: percent(p) } })),
          el("span", { class: "value", text: percent(p) })),
      )));
    }
    return item;
  });
  $("live-faces").replaceChildren(...items);
}

async function refreshLiveCollections() {
  const select = $("live-collection");
  const kept = select.value;
  let listed = [];
  try {
    listed = await api("/v1/collections");
  } catch {
    // no collections to offer (e.g. no key yet): names stay off
  }
  select.replaceChildren(el("option", { value: "", text: "no names" }),
    ...listed.map((c) => el("option", { value: c.collection, text: c.collection })));
  if ([...select.options].some((o) => o.value === kept)) select.value = kept;
}

function setUpLive() {
  $("live-start").addEventListener("click", startCamera);
  $("live-stop").addEventListener("click", stopLive);
  $("live-file").addEventListener("change", (event) => {
    if (event.target.files[0]) startFile(event.target.files[0]);
  });
  const reconnect = () => {
    if (live.running) connect();
  };
  $("live-collection").addEventListener("change", reconnect);
  $("live-attributes").addEventListener("change", reconnect);
  for (const box of document.querySelectorAll("#live [data-overlay]")) {
    box.addEventListener("change", () => {
      const wanted = LANDMARK_OVERLAYS.some((name) => overlays().has(name));
      if (live.ready && live.ready.options.landmarks !== wanted) reconnect();
    });
  }
  window.addEventListener("hashchange", () => {
    if (location.hash !== "#live") stopLive();
    else refreshLiveCollections();
  });
  refreshLiveCollections();
  liveState("stopped", "");
}

setUpLive();
