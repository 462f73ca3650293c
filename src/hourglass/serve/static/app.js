// The page of `hourglass serve`: a photo (chosen or dropped) goes to POST /v1/predict, camera frames go over
// the WebSocket /v1/stream; each person's skeleton is drawn over the picture in their own colour, a joint's
// score shows on hover, and the table gives the time of each step. Plain JavaScript, nothing fetched from
// anywhere but this server.
"use strict";

const PALETTE = [
  [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [0, 128, 128], [170, 110, 40],
];
const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const video = $("video");
const keyInput = $("key");
let skeleton = null;      // from /v1/model or from the latest answer
let drawn = null;         // { result, colourOf }: what the canvas shows, for the hover
let camera = null;        // { stream, ws, frames, bitmap }

window.hourglassPage = { palette: PALETTE, last: null };

function setState(state) { document.body.dataset.state = state; }
function say(text) { $("status").textContent = text || ""; }
function rgb(c) { return `rgb(${c[0]}, ${c[1]}, ${c[2]})`; }
function b64url(text) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function authHeaders() {
  const key = keyInput.value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}
function boxesText() {
  const text = $("boxes").value.trim();
  if (text) JSON.parse(text);  // a typo is said here, before anything is sent
  return text;
}

async function readModel() {
  sessionStorage.setItem("hourglass-key", keyInput.value);
  try {
    const res = await fetch("/v1/model", { headers: authHeaders() });
    const body = await res.json();
    if (!res.ok) { $("model").textContent = res.status === 401 ? "needs the API key" : body.error; return; }
    skeleton = body.skeleton;
    const name = body.model ? body.model.name : "model";
    const s = body.serving;
    $("model").textContent = `${name} · ${skeleton.name} (${skeleton.joints.length} joints) · ` +
      `${body.input_size[1]}x${body.input_size[0]} · ${s.backend} ${s.precision}${s.flip ? " · flip" : ""}`;
  } catch (err) {
    $("model").textContent = `the server does not answer (${err.message})`;
  }
}

function draw(source, width, height, result, colourOf) {
  canvas.width = width;
  canvas.height = height;
  ctx.drawImage(source, 0, 0, width, height);
  const edges = result.skeleton.edges;
  const line = Math.max(2, Math.round(Math.max(width, height) / 220));
  result.people.forEach((person, i) => {
    const colour = rgb(colourOf(person, i));
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = line;
    ctx.lineCap = "round";
    const k = person.keypoints;
    for (const [a, b] of edges) {
      ctx.beginPath();
      ctx.moveTo(k[a][0], k[a][1]);
      ctx.lineTo(k[b][0], k[b][1]);
      ctx.stroke();
    }
    for (const [x, y] of k) {
      ctx.beginPath();
      ctx.arc(x, y, line * 1.6, 0, 2 * Math.PI);
      ctx.fill();
    }
  });
  drawn = { result, colourOf };
  skeleton = result.skeleton;
  window.hourglassPage.last = result;
}

function showNumbers(result, client) {
  $("people").textContent = String(result.people.length);
  const rows = { ...result.timing_ms, ...client };
  const body = $("timing").tBodies[0];
  body.replaceChildren(...Object.entries(rows).map(([step, ms]) => {
    const tr = document.createElement("tr");
    tr.innerHTML = `<td>${step}</td><td>${Number(ms).toFixed(1)}</td>`;
    return tr;
  }));
  const batch = document.createElement("tr");
  batch.innerHTML = `<td>crops in its batch</td><td>${result.batch}</td>`;
  body.append(batch);
}

async function predictPhoto(file) {
  stopCamera();
  say("");
  setState("busy");
  try {
    const params = new URLSearchParams({ flip: $("flip").checked ? "true" : "false" });
    const boxes = boxesText();
    if (boxes) params.set("boxes", boxes);
    const bitmap = await createImageBitmap(file);
    const t0 = performance.now();
    const res = await fetch(`/v1/predict?${params}`, {
      method: "POST",
      headers: { ...authHeaders(), "Content-Type": file.type || "image/jpeg" },
      body: file,
    });
    const result = await res.json();
    if (!res.ok) throw new Error(`${res.status}: ${result.error}`);
    const t1 = performance.now();
    draw(bitmap, bitmap.width, bitmap.height, result, (p, i) => PALETTE[i % PALETTE.length]);
    showNumbers(result, { "round trip": t1 - t0, draw: performance.now() - t1 });
    setState("drawn");
  } catch (err) {
    say(err.message);
    setState("error");
  }
}

async function startCamera() {
  say("");
  try {
    const boxes = boxesText();
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
    video.srcObject = stream;
    await video.play();
    if (!video.videoWidth) await new Promise((done) => video.addEventListener("loadeddata", done, { once: true }));
    const protocols = ["hourglass.v1"];
    if (keyInput.value.trim()) protocols.push(`bearer.${b64url(keyInput.value.trim())}`);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`, protocols);
    camera = { stream, ws, frames: 0, bitmap: null, sentAt: 0 };
    $("camera").textContent = "Stop the camera";
    ws.onopen = () => {
      ws.send(JSON.stringify({ boxes: boxes ? JSON.parse(boxes) : null, flip: $("flip").checked }));
      sendFrame();
    };
    ws.onmessage = (event) => onFrame(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (camera && camera.ws === ws) { say(`stream closed (${event.code}${event.reason ? ": " + event.reason : ""})`); stopCamera(); }
    };
  } catch (err) {
    say(`camera: ${err.message}`);
    stopCamera();
  }
}

function onFrame(message) {
  if (!camera || message.options) return;
  if (message.error) {
    say(`frame ${message.frame}: ${message.error}`);
  } else {
    const rtt = performance.now() - camera.sentAt;
    const t = performance.now();
    const bitmap = camera.bitmap;
    draw(bitmap, bitmap.width, bitmap.height, message, (p) => PALETTE[p.track_id % PALETTE.length]);
    showNumbers(message, { "round trip": rtt, draw: performance.now() - t });
    camera.frames += 1;
    $("frames").textContent = `(frame ${message.frame}, tracks ${message.people.map((p) => p.track_id).join(", ") || "none"})`;
    setState("streaming");
  }
  sendFrame();
}

async function sendFrame() {
  if (!camera || camera.ws.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  const width = Math.min(640, video.videoWidth);
  const height = Math.round((video.videoHeight * width) / video.videoWidth);
  const frame = document.createElement("canvas");
  frame.width = width;
  frame.height = height;
  frame.getContext("2d").drawImage(video, 0, 0, width, height);
  const blob = await new Promise((done) => frame.toBlob(done, "image/jpeg", 0.8));
  if (!camera) return;
  camera.bitmap = await createImageBitmap(frame);
  camera.sentAt = performance.now();
  camera.ws.send(await blob.arrayBuffer());
}

function stopCamera() {
  if (!camera) return;
  const { stream, ws } = camera;
  camera = null;
  ws.close();
  stream.getTracks().forEach((track) => track.stop());
  video.srcObject = null;
  $("camera").textContent = "Start the camera";
}

function hover(event) {
  const tip = $("tip");
  if (!drawn) return;
  const scale = canvas.width / canvas.clientWidth;
  const x = event.offsetX * scale;
  const y = event.offsetY * scale;
  let best = null;
  drawn.result.people.forEach((person, i) => {
    person.keypoints.forEach(([kx, ky, score], j) => {
      const d = Math.hypot(kx - x, ky - y) / scale;
      if (d < 12 && (!best || d < best.d)) best = { d, i, j, score, person };
    });
  });
  if (!best) { tip.hidden = true; return; }
  const who = best.person.track_id !== undefined ? `track ${best.person.track_id}` : `person ${best.i + 1}`;
  tip.textContent = `${who} · ${drawn.result.skeleton.joints[best.j]}: ${best.score.toFixed(2)}`;
  tip.style.borderLeft = `4px solid ${rgb(drawn.colourOf(best.person, best.i))}`;
  tip.style.left = `${canvas.offsetLeft + event.offsetX + 12}px`;
  tip.style.top = `${canvas.offsetTop + event.offsetY + 12}px`;
  tip.hidden = false;
}

$("file").addEventListener("change", (event) => { if (event.target.files[0]) predictPhoto(event.target.files[0]); });
$("camera").addEventListener("click", () => (camera ? stopCamera() : startCamera()));
keyInput.value = sessionStorage.getItem("hourglass-key") || "";
keyInput.addEventListener("change", readModel);
canvas.addEventListener("mousemove", hover);
canvas.addEventListener("mouseleave", () => { $("tip").hidden = true; });
const stage = $("stage");
stage.addEventListener("dragover", (event) => { event.preventDefault(); stage.classList.add("over"); });
stage.addEventListener("dragleave", () => stage.classList.remove("over"));
stage.addEventListener("drop", (event) => {
  event.preventDefault();
  stage.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) predictPhoto(file);
});
readModel();
