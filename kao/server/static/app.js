// kao's web page: five pages (analyze, compare, enrol & identify, group, people) that call the
// JSON API of `kao serve` and draw its answers on canvases. Photos are shrunk in the browser
// before they are sent. No framework, no build step, nothing loaded from elsewhere.
"use strict";

const KEY_STORAGE = "kao.apiKey";
const EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprised"];
const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#0f9fb4", "#f032e6",
  "#8a9a00", "#b86e00", "#008080"];
const UNKNOWN_COLOR = "#7a7a7a";
const MIN_CANVAS = 640; // a drawn photo's longest side: small ones are enlarged to this,
const MAX_CANVAS = 1600; // large ones reduced to this (pixels)
const NEED_KEY = "This server needs an API key: paste one here.";
const KEY_SAVED = "Saved in this browser.";
const MODEL_NAMES = { dlib_resnet_v1: "dlib ResNet", edgeface_xs: "EdgeFace XS",
  edgeface_xxs: "EdgeFace XXS" }; // recognition models as people read them
const FAR_RANGE = [1e-5, 1e-1]; // verify's "far" is clamped to its calibrated table's range
const UPLOAD_SIDE = 2048; // photos are sent with their longest side at most this (pixels),
const UPLOAD_QUALITY = 0.92; // re-encoded as JPEG at this quality when they had to be shrunk
const PREPARE_BATCH = 4; // photos of a set decoded and shrunk at once (bounds the memory used)
const COMPACT_FACES = 5; // from this many faces, a result's cards are compact, bars folded
const THUMB_SIDE = 80; // the people view's face thumbnails (pixels),
const PERSON_FACES = 24; // of a person's first faces only
const THUMB_STORAGE = "kao.thumbnails"; // {face id: {collection, box, src}} in localStorage
const MB = 1024 * 1024;

const $ = (id) => document.getElementById(id);
const colorOf = (i) => COLORS[i % COLORS.length];
const percent = (p) => `${Math.round(p * 100)}%`;
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** An element `tag` with attributes (class, text, data-*, ...) and children. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

/** Makes Enter in text field `input` click `button`. */
function enterClicks(input, button) {
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") button.click();
  });
}

// ---------------------------------------------------------------- the API

/** A failure to show the user: the API's message, or what went wrong reaching it, and
 * optionally (set by the caller who knows) a `hint` of what to do about it on this page. */
class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
    this.hint = "";
  }
}

/** A request the user cancelled. */
class Cancelled extends Error {}

/** The JSON answer of `path`, or an ApiError with the server's {"error": ...} message.
 * `options`: method, headers, body, as fetch's; `onSent(bytes)` hears the upload's progress,
 * and aborting `signal` (an AbortSignal) cancels the request (Cancelled). */
function api(path, { method = "GET", headers = {}, body = null, onSent, signal } = {}) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(new Cancelled());
      return;
    }
    const request = new XMLHttpRequest();
    request.open(method, path);
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    const key = localStorage.getItem(KEY_STORAGE);
    if (key) request.setRequestHeader("Authorization", `Bearer ${key}`);
    if (onSent) request.upload.addEventListener("progress", (event) => onSent(event.loaded));
    if (signal) signal.addEventListener("abort", () => request.abort(), { once: true });
    request.onabort = () => reject(new Cancelled());
    request.onerror = () => reject(
      new ApiError("cannot reach the kao server: is it still running?"));
    request.onload = () => {
      let answer = null;
      try {
        answer = JSON.parse(request.responseText);
      } catch {
        // not JSON: reported below
      }
      const { status, statusText } = request;
      if (status < 200 || status > 299) {
        if (status === 401) showKeyBox(NEED_KEY);
        const message = answer && typeof answer.error === "string" ? answer.error
          : `the server answered ${status} ${statusText}`.trim();
        const error = new ApiError(message, status);
        if (status === 413) error.hint = "Send fewer photos at once.";
        reject(error);
      } else if (answer === null) {
        reject(new ApiError("the server's answer is not JSON", status));
      } else {
        resolve(answer);
      }
    };
    request.send(body);
  });
}

/** A multipart body: each value is a string, a File, or a list of Files (one part each). */
function formOf(fields) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) form.append(name, item);
  }
  return form;
}

const post = (path, fields, options = {}) =>
  api(path, { ...options, method: "POST", body: formOf(fields) });
/** POSTs `value` as JSON to `path` (`options`: onSent, signal, as `api`'s). */
const sendJson = (path, value, options = {}) => api(path, {
  ...options, method: "POST", headers: { "Content-Type": "application/json" },
  body: JSON.stringify(value),
});
/** The choices of every strictness selector: (far sent, its words); "" sends none. */
const STRICTNESS = [
  ["", "at the model's calibrated threshold"],
  ["0.001", "as strict as 1 in 1,000 strangers matching"],
  ["0.0001", "as strict as 1 in 10,000"],
  ["0.00001", "as strict as 1 in 100,000"],
];

/** Fills every `select[data-strictness]` with the `STRICTNESS` choices. */
function setUpStrictness() {
  for (const select of document.querySelectorAll("select[data-strictness]")) {
    select.replaceChildren(...STRICTNESS.map(([value, text]) => el("option", { value, text })));
  }
}

/** `path` with the query parameters of `params` that are not empty ({model, far}). */
function withQuery(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, value]) => value));
  return query.toString() ? `${path}?${query}` : path;
}
const inCollection = (name, rest) => `/v1/collections/${encodeURIComponent(name)}${rest}`;

// ---------------------------------------------------------------- API key

function showKeyBox(message) {
  $("key").hidden = false;
  if (message) $("key-state").textContent = message;
}

function setUpKey() {
  const input = $("key-input");
  input.value = localStorage.getItem(KEY_STORAGE) || "";
  if (input.value) showKeyBox(KEY_SAVED);
  $("key-save").addEventListener("click", () => {
    const key = input.value.trim();
    if (!key) return;
    localStorage.setItem(KEY_STORAGE, key);
    $("key-state").textContent = KEY_SAVED;
    loadModels().then(refreshCollections);
  });
  $("key-forget").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    input.value = "";
    $("key-state").textContent = "Forgotten.";
  });
  api("/health").then((health) => {
    if (health.keys_required) showKeyBox(input.value ? KEY_SAVED : NEED_KEY);
  }).catch(() => {});
}

// ---------------------------------------------------------------- page parts

/** The error box, status line and result area of a page section. */
function partsOf(id) {
  const root = $(id);
  return {
    error: root.querySelector(".error"),
    status: root.querySelector(".status"),
    result: root.querySelector(".result"),
  };
}

/** Runs `work` with `parts` showing `message` meanwhile; its resolved text (if any) stays in
 * the status line; a failure goes to the error box, the result area is then hidden (a
 * cancelled one only says so). Once `current()` is false (another run took over), the
 * outcome is not shown. */
async function busy(parts, message, work, current = () => true) {
  parts.error.hidden = true;
  parts.status.textContent = message;
  parts.status.classList.add("working");
  try {
    const said = await work();
    if (current()) parts.status.textContent = said || "";
  } catch (error) {
    if (!current()) return;
    parts.status.textContent = error instanceof Cancelled ? "Cancelled." : "";
    parts.result.hidden = true;
    if (!(error instanceof Cancelled)) showError(parts, error);
  } finally {
    if (current()) parts.status.classList.remove("working");
  }
}

/** `parts` whose result area stays shown when a change made from it fails. */
const keepingResult = (parts) => ({ ...parts, result: el("div") });

function showError(parts, error) {
  const text = error instanceof ApiError ? error.message : `the page failed: ${error.message}`;
  parts.error.textContent = text.charAt(0).toUpperCase() + text.slice(1);
  if (error.hint) parts.error.append(el("span", { class: "hint", text: error.hint }));
  parts.error.hidden = false;
}

/** Drop zones: a file dropped on a [data-drop] label goes to its file input. Each label also
 * shows the names of the files chosen. */
function setUpDropZones() {
  for (const zone of document.querySelectorAll("[data-drop]")) {
    const input = zone.querySelector("input[type=file]");
    const caption = zone.querySelector("span");
    const prompt = caption.textContent;
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const files = [...event.dataTransfer.files].slice(0, input.multiple ? undefined : 1);
      if (!files.length) return;
      const transfer = new DataTransfer();
      files.forEach((file) => transfer.items.add(file));
      input.files = transfer.files;
      input.dispatchEvent(new Event("change"));
    });
    input.addEventListener("change", () => {
      const names = [...input.files].map((f) => f.name);
      const chosen = names.length > 3 ? `${plural(names.length, "photo")} chosen`
        : names.join(", ");
      caption.textContent = chosen || prompt;
      zone.classList.toggle("chosen", names.length > 0);
    });
  }
}

function setUpTabs() {
  const show = () => {
    const wanted = location.hash.slice(1);
    const pages = [...document.querySelectorAll(".page")];
    const current = pages.find((p) => p.id === wanted) || pages[0];
    for (const page of pages) page.hidden = page !== current;
    for (const link of document.querySelectorAll("nav a")) {
      if (link.dataset.tab === current.id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  };
  window.addEventListener("hashchange", show);
  show();
}

// ---------------------------------------------------------------- recognition models

/** The server's recognition models by name ({name, dimension, threshold, default}), from GET
 * /v1/models; empty when the server does not list them. */
const models = new Map();

/** A recognition model as people read it: "EdgeFace XS (512-d, default)", "dlib ResNet
 * (128-d)"; a model the server did not list by its readable name alone. */
function modelLabel(name) {
  const readable = MODEL_NAMES[name] || name;
  const model = models.get(name);
  if (!model) return readable;
  return `${readable} (${model.dimension}-d${model.default ? ", default" : ""})`;
}

/** Fills every select[data-models] with the server's recognition models, keeping each one's
 * choice, else choosing the server's default; a non-empty data-models is the label of a first
 * choice that sends no model (the server decides). Without GET /v1/models (an older server, or
 * one still waiting for an API key) the selectors stay hidden and no model is sent. */
async function loadModels() {
  let listing;
  try {
    listing = await api("/v1/models");
  } catch {
    return;
  }
  models.clear();
  for (const model of listing.recognition) models.set(model.name, model);
  for (const select of document.querySelectorAll("select[data-models]")) {
    const keep = select.value;
    const options = listing.recognition.map((m) => el("option", {
      value: m.name, text: modelLabel(m.name),
    }));
    const serverChooses = select.dataset.models;
    if (serverChooses) options.unshift(el("option", { value: "", text: serverChooses }));
    select.replaceChildren(...options);
    const values = options.map((option) => option.value);
    select.value = values.includes(keep) ? keep : (serverChooses ? "" : listing.default);
    select.closest(".model").hidden = false;
  }
}

/** The model chosen in select `id`: a model's name, or "" (send none). */
const chosenModel = (id) => $(id).value;

/** A false-accept rate (the share of strangers whose faces are at least this close) in words:
 * 3.2e-5 -> "1 in 31,000 strangers look this similar" (1 / far to two significant digits); the
 * ends of the calibrated range, where `far` is clamped, read as bounds ("fewer than 1 in
 * 100,000", "1 in 10 or more"). */
function farWords(far) {
  const [low, high] = FAR_RANGE;
  const count = (n) => Number(n.toPrecision(2)).toLocaleString("en-US");
  if (far <= low) return `fewer than 1 in ${count(1 / low)} strangers look this similar`;
  if (far >= high) return `1 in ${count(1 / high)} or more strangers look this similar`;
  return `1 in ${count(1 / far)} strangers look this similar`;
}

// ---------------------------------------------------------------- drawing

/** The photo in `file` as an <img>, or null when this browser cannot decode it. */
function loadImage(file) {
  return new Promise((resolve) => {
    const image = new Image();
    const url = URL.createObjectURL(file);
    image.onload = () => {
      URL.revokeObjectURL(url); // the decoded image stays drawable
      resolve(image);
    };
    image.onerror = () => {
      URL.revokeObjectURL(url);
      resolve(null);
    };
    image.src = url;
  });
}

/** `file` as it is sent: a photo whose longest side is over UPLOAD_SIDE pixels is drawn
 * upright (its EXIF orientation applied) at that side and re-encoded as a JPEG of the same
 * name; smaller photos, and files this browser cannot decode (the server says what is wrong
 * with them), go as they are. */
async function shrink(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return file;
  }
  const longest = Math.max(bitmap.width, bitmap.height);
  if (longest <= UPLOAD_SIDE) {
    bitmap.close();
    return file;
  }
  shrunkFrom.set(file, [bitmap.width, bitmap.height]);
  const scale = UPLOAD_SIDE / longest;
  const canvas = new OffscreenCanvas(
    Math.round(bitmap.width * scale), Math.round(bitmap.height * scale));
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: UPLOAD_QUALITY });
  return new File([blob], file.name, { type: "image/jpeg", lastModified: file.lastModified });
}

/** The upright size ([width, height], pixels) of each chosen File that `shrink` made smaller. */
const shrunkFrom = new WeakMap();

/** " (4000 × 3000 sent at 2048 × 1536)": a photo's size, and the size it was sent at when the
 * page shrank it, from the size of the photo the server read. */
function sizeSent(file, width, height) {
  const original = shrunkFrom.get(file);
  const sent = `${width} × ${height}`;
  return original ? ` (${original.join(" × ")} sent at ${sent})` : ` (${sent})`;
}

/** Each chosen File's prepared form, made once: {upload: the File to send (see `shrink`),
 * image: it decoded as an <img> (null when the browser cannot)}. */
const prepared = new WeakMap();

/** `file` ready to send and to draw (see `prepared`). */
function prepare(file) {
  if (!prepared.has(file)) {
    prepared.set(file, shrink(file).then(async (upload) => ({
      upload, image: await loadImage(upload),
    })));
  }
  return prepared.get(file);
}

/** `files` prepared PREPARE_BATCH at a time, `onReady(i, ready)` told as each is; stops with
 * Cancelled when `signal` is aborted. */
async function prepareAll(files, onReady = () => {}, signal = null) {
  const all = [];
  for (let start = 0; start < files.length; start += PREPARE_BATCH) {
    if (signal && signal.aborted) throw new Cancelled();
    const batch = files.slice(start, start + PREPARE_BATCH);
    all.push(...await Promise.all(batch.map(async (file, j) => {
      const ready = await prepare(file);
      onReady(start + j, ready);
      return ready;
    })));
  }
  return all;
}

/** Draws `image` (null: a grey placeholder of `width` x `height`) on `canvas`, its longest
 * side scaled into [MIN_CANVAS, MAX_CANVAS] (the scale goes in data-scale); returns a painter
 * that draws in the photo's pixel coordinates. */
function drawPhoto(canvas, image, width, height) {
  width = width || (image ? image.naturalWidth : 400);
  height = height || (image ? image.naturalHeight : 300);
  const longest = Math.max(width, height);
  const scale = Math.min(MAX_CANVAS, Math.max(MIN_CANVAS, longest)) / longest;
  canvas.dataset.scale = scale;
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const ctx = canvas.getContext("2d");
  if (image) {
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  } else {
    ctx.fillStyle = "#ddd";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#555";
    ctx.font = "16px sans-serif";
    ctx.fillText("(this browser cannot show the photo)", 12, 28);
  }
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  const line = Math.max(2, (longest * scale) / 250) / scale; // in photo pixels
  const text = line * 8;
  return {
    box(box, color, label) {
      const [x1, y1, x2, y2] = box;
      ctx.lineWidth = line;
      ctx.strokeStyle = color;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      if (!label) return;
      ctx.font = `bold ${text}px system-ui, sans-serif`;
      const pad = text * 0.25;
      const textHeight = text + 2 * pad;
      const top = y1 - textHeight >= 0 ? y1 - textHeight : y2;
      ctx.fillStyle = color;
      ctx.fillRect(x1 - line / 2, top, ctx.measureText(label).width + 2 * pad, textHeight);
      ctx.fillStyle = "#fff";
      ctx.textBaseline = "middle";
      ctx.fillText(label, x1 - line / 2 + pad, top + textHeight / 2);
    },
    points(points, color) {
      ctx.fillStyle = color;
      for (const [x, y] of points) {
        ctx.beginPath();
        ctx.arc(x, y, line * 0.7, 0, 2 * Math.PI);
        ctx.fill();
      }
    },
  };
}

/** A small canvas with the face `box` of `image`, with a margin around it. */
function thumbnail(image, box, size = 88) {
  const canvas = el("canvas", { width: size, height: size, class: "thumb" });
  const [x1, y1, x2, y2] = box;
  const side = Math.max(x2 - x1, y2 - y1) * 1.3;
  const cx = (x1 + x2) / 2;
  const cy = (y1 + y2) / 2;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ddd";
  ctx.fillRect(0, 0, size, size);
  if (image) ctx.drawImage(image, cx - side / 2, cy - side / 2, side, side, 0, 0, size, size);
  return canvas;
}

/** One bar per emotion, the likeliest in bold, folded under a summary naming it unless
 * `open`. */
function emotionBars(emotion, open = true) {
  const best = EMOTIONS.reduce((a, b) => (emotion[b] > emotion[a] ? b : a));
  const fold = el("details", { class: "emotions" },
    el("summary", { text: `${best} ${percent(emotion[best])}` }));
  fold.open = open;
  fold.append(el("div", { class: "emotion-bars" }, ...EMOTIONS.map((name) => el(
    "div", { class: name === best ? "emotion best" : "emotion" },
    el("span", { class: "name", text: name }),
    el("span", {
      class: "bar", role: "meter", "aria-label": name, "aria-valuemin": "0",
      "aria-valuemax": "1", "aria-valuenow": String(emotion[name]),
    }, el("span", { style: { width: percent(emotion[name]) } })),
    el("span", { class: "value", text: percent(emotion[name]) }),
  ))));
  return fold;
}

/** Marks `parts`' result compact when it shows many faces (small cards, folded bars, the
 * photo kept in view); returns whether it is. */
function compactFor(parts, count) {
  const many = count >= COMPACT_FACES;
  parts.result.classList.toggle("many", many);
  return many;
}

/** The heading of a face's card: a swatch of its box's colour, and a title. */
function faceHeading(color, title) {
  return el("h3", {}, el("span", { class: "swatch", style: { background: color } }), title);
}

// ---------------------------------------------------------------- analyze

/** A face's "missing" map as lines "no pose, gaze: reason", one per reason. */
function missingLines(missing) {
  const byReason = new Map();
  for (const [key, reason] of Object.entries(missing || {})) {
    byReason.set(reason, [...(byReason.get(reason) || []), key]);
  }
  return [...byReason].map(([reason, keys]) => `no ${keys.join(", ")}: ${reason}`);
}

/** A face's quality as one line: "quality 0.62 (weakest: sharpness) · 96 px". */
function qualityLine(quality) {
  return `quality ${quality.score.toFixed(2)} (weakest: ${quality.weakest}) · ` +
    `${Math.round(quality.size)} px`;
}

function describeFace(face, i, compact = false) {
  const facts = [];
  if (face.age != null) facts.push(`age ${Math.round(face.age)}`);
  if (face.gender) facts.push(`${face.gender.label} ${percent(face.gender.score)}`);
  if (face.mask) facts.push(`${face.mask.label.replace("_", " ")} ${percent(face.mask.score)}`);
  const card = el("li", { class: "face", "data-box": face.box.join(","), "data-color": colorOf(i) },
    faceHeading(colorOf(i), `Face ${i + 1}`),
    el("p", { class: "facts", text: facts.join(" · ") || "no attributes" }));
  if (face.pose) {
    const angles = ["yaw", "pitch", "roll"].map((a) => `${a} ${Math.round(face.pose[a])}°`);
    card.append(el("p", { class: "pose", text: `head: ${angles.join(", ")}` }));
  }
  if (face.quality) card.append(el("p", { class: "quality", text: qualityLine(face.quality) }));
  if (face.emotion) card.append(emotionBars(face.emotion, !compact));
  for (const line of missingLines(face.missing)) {
    card.append(el("p", { class: "missing", text: line }));
  }
  return card;
}

function setUpAnalyze() {
  const parts = partsOf("analyze");
  const input = $("analyze-file");
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (!file) return;
    busy(parts, `Analyzing ${file.name}…`, async () => {
      const { upload, image } = await prepare(file);
      const record = await post("/v1/analyze", { image: upload });
      const count = record.faces.length;
      const paint = drawPhoto($("analyze-canvas"), image, record.width, record.height);
      record.faces.forEach((face, i) => {
        if (face.landmarks_68) paint.points(face.landmarks_68, "#ffef5a");
        paint.box(face.box, colorOf(i), String(i + 1));
      });
      $("analyze-canvas").dataset.faces = count;
      const compact = compactFor(parts, count);
      $("analyze-faces").replaceChildren(
        ...record.faces.map((face, i) => describeFace(face, i, compact)));
      parts.result.hidden = false;
      const size = sizeSent(file, record.width, record.height);
      if (!count) return `No face found in ${file.name}${size}.`;
      return `${plural(count, "face")} in ${file.name}${size}.`;
    });
  });
}

// ---------------------------------------------------------------- compare

/** Shows the photo chosen in file input `input` in the <img> `preview` (hidden without one). */
async function showPreview(input, preview) {
  const file = input.files[0];
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.removeAttribute("src");
  preview.hidden = !file;
  if (!file) return;
  const { upload } = await prepare(file);
  if (input.files[0] === file) preview.src = URL.createObjectURL(upload);
}

function setUpCompare() {
  const parts = partsOf("compare");
  const inputs = [$("compare-a"), $("compare-b")];
  const run = () => {
    const [a, b] = inputs.map((input) => input.files[0]);
    if (!a || !b) return;
    busy(parts, "Comparing…", async () => {
      const path = withQuery("/v1/verify",
        { model: chosenModel("compare-model"), far: $("compare-strictness").value });
      const [readyA, readyB] = await Promise.all([prepare(a), prepare(b)]);
      const result = await post(path, { a: readyA.upload, b: readyB.upload });
      const [imageA, imageB] = [readyA.image, readyB.image];
      const verdict = $("compare-verdict");
      verdict.textContent = result.same ? "Same person" : "Not the same person";
      verdict.className = `verdict ${result.same ? "same" : "different"}`;
      const far = el("span", { id: "compare-far", text: farWords(result.far) });
      verdict.append(el("small", {}, ` similarity ${percent(result.similarity)} · `, far));
      $("compare-details").textContent = `${modelLabel(result.model)} · distance `
        + `${result.distance.toFixed(3)}, same person below ${result.threshold} · strangers `
        + "counted among LFW's pairs of different people";
      const color = result.same ? COLORS[1] : COLORS[0];
      for (const [canvas, image, side] of [["compare-canvas-a", imageA, result.a],
        ["compare-canvas-b", imageB, result.b]]) {
        const label = side.faces > 1 ? `face ${side.face} of ${side.faces}` : "";
        drawPhoto($(canvas), image).box(side.box, color, label);
      }
      parts.result.hidden = false;
    });
  };
  for (const [input, side] of [[inputs[0], "a"], [inputs[1], "b"]]) {
    input.addEventListener("change", () => {
      showPreview(input, $(`compare-preview-${side}`));
      run();
    });
  }
  $("compare-model").addEventListener("change", run);
  $("compare-strictness").addEventListener("change", run);
}

// ---------------------------------------------------------------- face thumbnails

/** The thumbnails of the faces this browser enrolled, kept in its localStorage (the server
 * keeps no photo): {face id: {collection, box, src: a JPEG data: URL}}. */
function storedThumbnails() {
  try {
    return JSON.parse(localStorage.getItem(THUMB_STORAGE)) || {};
  } catch {
    return {};
  }
}

/** Saves `thumbnails` (see `storedThumbnails`); when the browser's storage is full, the page
 * goes on without keeping them. */
function storeThumbnails(thumbnails) {
  try {
    localStorage.setItem(THUMB_STORAGE, JSON.stringify(thumbnails));
  } catch {
    // full: the people view shows initials instead
  }
}

/** Keeps a thumbnail of each face just enrolled: face `ids[i]` was found in `images[i]` (an
 * <img>, or null when the browser cannot draw it) at the box GET .../faces gives. The faces
 * are enrolled whatever happens here: when that listing fails, none is kept. */
async function keepThumbnails(collection, ids, images) {
  let faces;
  try {
    faces = await api(inCollection(collection, "/faces"));
  } catch {
    return;
  }
  const boxes = new Map(faces.map((face) => [face.id, face.box]));
  const thumbnails = storedThumbnails();
  ids.forEach((id, i) => {
    const box = boxes.get(id);
    if (!box || !images[i]) return;
    const src = thumbnail(images[i], box, THUMB_SIDE).toDataURL("image/jpeg", 0.85);
    thumbnails[id] = { collection, box, src };
  });
  storeThumbnails(thumbnails);
}

/** The stored thumbnail of `face` (a GET .../faces record) of `collection`, or null: one kept
 * for the same id, collection and box (not a face of another database served here before). */
function thumbnailOf(collection, face) {
  const kept = storedThumbnails()[face.id];
  const same = kept && kept.collection === collection
    && JSON.stringify(kept.box) === JSON.stringify(face.box);
  return same ? kept.src : null;
}

/** Forgets the thumbnails of `collection` whose face id is not in `keep` (a Set; none: all of
 * the collection's). */
function forgetThumbnails(collection, keep = new Set()) {
  const thumbnails = storedThumbnails();
  for (const [id, kept] of Object.entries(thumbnails)) {
    if (kept.collection === collection && !keep.has(Number(id))) delete thumbnails[id];
  }
  storeThumbnails(thumbnails);
}

// ---------------------------------------------------------------- enrol & identify

const identifyParts = () => partsOf("identify");

/** The collections as GET /v1/collections last listed them, by name. */
const collections = new Map();

/** "dlib ResNet (128-d)": the model collection `c` is pinned to; "" when it has none yet (or
 * the server does not say). */
const collectionModel = (c) => (c && c.model ? modelLabel(c.model) : "");

/** The selectors of a collection: enrol & identify's, the people view's, group's. */
const COLLECTION_SELECTS = ["collection", "people-collection", "group-collection"];

/** Fills the collection selectors (each keeping its choice; enrol & identify's choosing
 * `wanted` if given), then the persons of the chosen ones. */
async function refreshCollections(wanted) {
  let listed;
  try {
    listed = await api("/v1/collections");
  } catch (error) {
    showError(identifyParts(), error);
    return;
  }
  identifyParts().error.hidden = true;
  collections.clear();
  for (const c of listed) collections.set(c.collection, c);
  for (const id of COLLECTION_SELECTS) {
    const select = $(id);
    const keep = (id === "collection" && wanted) || select.value;
    select.replaceChildren(...listed.map((c) => {
      const counts = `${plural(c.persons, "person", "people")}, ${plural(c.faces, "face")}`;
      const model = c.model ? ` · ${modelLabel(c.model)}` : "";
      return el("option", { value: c.collection, text: `${c.collection} (${counts})${model}` });
    }));
    if (!listed.length) {
      select.append(el("option", { value: "", text: "no collection yet: create one" }));
    }
    if (collections.has(keep)) select.value = keep;
  }
  await Promise.all([refreshPersons(), showPeople()]);
}

/** Says which model the chosen collection is pinned to (the first enrolment pins it). */
function describeCollectionModel() {
  const c = collections.get($("collection").value);
  const pinned = collectionModel(c);
  let text = "";
  if (pinned) text = `Its faces are embedded with ${pinned}, the only model it takes.`;
  else if (c && "model" in c) text = "No faces yet: its first enrolment chooses its model.";
  $("collection-model").textContent = text;
}

async function refreshPersons() {
  const collection = $("collection").value;
  const list = $("persons");
  describeCollectionModel();
  if (!collection) {
    list.replaceChildren();
    return;
  }
  try {
    const persons = await api(inCollection(collection, "/persons"));
    list.replaceChildren(...persons.map((p) => el("li", {
      text: `${p.person} · ${plural(p.faces, "photo")}`,
    })));
  } catch (error) {
    showError(identifyParts(), error);
  }
}

/** The chosen collection, or an error asking for one. */
function chosenCollection() {
  const collection = $("collection").value;
  if (!collection) throw new ApiError("choose a collection, or create one first");
  return collection;
}

/** POSTs `fields` to `rest` of `collection` with the chosen model; a 409 (the collection is
 * pinned to another model) keeps the server's message and says how to fix it on this page. */
async function postToCollection(collection, rest, fields, far = "") {
  const model = chosenModel("identify-model");
  try {
    return await post(withQuery(inCollection(collection, rest), { model, far }), fields);
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && model) {
      const pinned = collectionModel(collections.get(collection));
      error.hint = `Choose "${$("identify-model").options[0].text}"${pinned ? ` (${pinned})` : ""}`
        + " as the recognition model, or use another collection.";
    }
    throw error;
  }
}

function setUpIdentify() {
  const parts = identifyParts();
  $("collection").addEventListener("change", refreshPersons);

  $("collection-create").addEventListener("click", () => {
    const name = $("collection-name").value.trim();
    busy(parts, "Creating…", async () => {
      if (!name) throw new ApiError("type a name for the new collection");
      await sendJson("/v1/collections", { name });
      $("collection-name").value = "";
      await refreshCollections(name);
      return `Collection ${name} created.`;
    });
  });

  $("enroll-run").addEventListener("click", () => {
    const person = $("enroll-person").value.trim();
    const input = $("enroll-files");
    busy(parts, `Enrolling ${person}…`, async () => {
      const collection = chosenCollection();
      if (!person) throw new ApiError("type the person's name");
      if (!input.files.length) throw new ApiError(`choose one or more photos of ${person}`);
      const ready = await prepareAll([...input.files]);
      const images = ready.map((r) => r.upload);
      const done = await postToCollection(collection, "/enroll", { person, images });
      await keepThumbnails(collection, done.added, ready.map((r) => r.image));
      $("enroll-person").value = "";
      input.value = "";
      input.dispatchEvent(new Event("change"));
      await refreshCollections();
      return `Enrolled ${plural(done.added.length, "photo")} of ${done.person} `
        + `(${plural(done.faces, "face")} in all).`;
    });
  });

  const query = $("identify-file");
  query.addEventListener("change", () => {
    const file = query.files[0];
    if (!file) return;
    busy(parts, `Identifying the faces of ${file.name}…`, async () => {
      const collection = chosenCollection();
      const { upload, image } = await prepare(file);
      const found = await postToCollection(collection, "/identify", { image: upload },
        $("identify-strictness").value);
      compactFor(parts, found.faces.length);
      const paint = drawPhoto($("identify-canvas"), image);
      const cards = found.faces.map((face, i) => {
        const name = face.person ?? "unknown";
        const color = face.person === null ? UNKNOWN_COLOR : colorOf(i);
        paint.box(face.box, color, name);
        const closest = face.matches.map((m) => `${m.person} ${percent(m.similarity)}`).join(", ");
        const facts = closest ? `closest: ${closest}` : "the collection is empty";
        return el("li", { class: "face", "data-person": face.person ?? "" },
          faceHeading(color, `Face ${i + 1}: ${name}`), el("p", { class: "facts", text: facts }));
      });
      $("identify-faces").replaceChildren(...cards);
      parts.result.hidden = false;
      if (!found.faces.length) return `No face found in ${file.name}.`;
      const known = found.faces.filter((f) => f.person !== null).length;
      return `${known} of ${plural(cards.length, "face")} recognised in ${collection}.`;
    });
  });
}

// ---------------------------------------------------------------- group

/** "1.4 MB", "820 KB": a size in bytes as people read it. */
const sizeText = (bytes) => (bytes >= MB ? `${(bytes / MB).toFixed(1)} MB`
  : `${Math.max(1, Math.round(bytes / 1024))} KB`);

/** Enrols the faces of `group` (of a /v1/group answer; `byName`: each photo as `prepare`
 * made it) as `person` into the collection chosen on the group page: each face's photo is sent
 * with the face's box; returns what to say. */
async function enrolGroup(group, byName, person) {
  const collection = $("group-collection").value;
  if (!collection) throw new ApiError("create a collection first (on Enrol & identify)");
  if (!person) throw new ApiError(`type a name for person ${group.person}`);
  const photos = group.faces.map((face) => byName.get(face.image));
  const boxes = new URLSearchParams(group.faces.map(
    (face) => ["box", face.box.map((v) => Number(v.toFixed(1))).join(",")]));
  const done = await post(`${inCollection(collection, "/enroll")}?${boxes}`,
    { person, images: photos.map((photo) => photo.upload) });
  await keepThumbnails(collection, done.added, photos.map((photo) => photo.image));
  await refreshCollections();
  return `Enrolled ${plural(done.added.length, "face")} as ${done.person} in ${collection} `
    + `(${plural(done.faces, "face")} in all).`;
}

/** One line per photo of a set, saying how far it got (see `markRow`); returns the lines. */
function photoRows(files) {
  const rows = files.map((file) => el("li", { "data-state": "waiting" },
    el("span", { class: "name", text: file.name }),
    el("span", { class: "state", text: "waiting" })));
  $("group-photos").replaceChildren(...rows);
  return rows;
}

/** Sets a photo's line: its `state` (waiting, sending, sent, found: its faces embedded, then
 * done: grouped, failed: the server could not read it, or stopped: cancelled or refused) goes
 * in data-state, `text` says it. */
function markRow(row, state, text = state) {
  row.dataset.state = state;
  row.lastChild.textContent = text;
}

const GROUP_IN_FLIGHT = 4; // photos of a Group set being shrunk and sent to /v1/embed at once

/** `work(item, i)` for each of `items`, at most `limit` running at once; resolves to their
 * results in order. Once one fails, or `signal` is aborted (Cancelled), no more start. */
async function inFlight(items, limit, work, signal) {
  const results = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      if (signal.aborted) throw new Cancelled();
      const i = next++;
      try {
        results[i] = await work(items[i], i);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Finds and embeds the faces of the `i`th photo `file` with /v1/embed (`model`), its line
 * marked by `mark` as it goes; resolves to {ready: as `prepare` made it, faces: the records of
 * /v1/embed with "image" the photo's name} or, when the server cannot read the photo (422,
 * 413), {ready, error: {image, error}} as /v1/group lists it. Other failures reject. */
async function embedPhoto(file, i, model, mark, signal) {
  const ready = await prepare(file);
  const { upload } = ready;
  const size = sizeText(upload.size);
  mark(i, "sending", upload === file ? `sending ${size}` : `shrunk to ${size}, sending`);
  const onSent = (bytes) => {
    if (bytes < upload.size) mark(i, "sending", `sending ${percent(bytes / upload.size)}`);
    else mark(i, "sent", "sent, finding faces");
  };
  try {
    const answer = await post(withQuery("/v1/embed", { model }), { image: upload },
      { onSent, signal });
    mark(i, "found", `${plural(answer.faces.length, "face")} found`);
    return { ready, faces: answer.faces.map((face) => ({ ...face, image: file.name })) };
  } catch (error) {
    if (!(error instanceof ApiError) || ![413, 422].includes(error.status)) throw error;
    const reason = error.message.replace(`'image' (${upload.name}): `, "");
    mark(i, "failed", reason);
    return { ready, error: { image: file.name, error: reason } };
  }
}

function setUpGroup() {
  const parts = partsOf("group");
  const input = $("group-files");
  const progress = $("group-progress");
  let latest = null; // the AbortController of the latest grouping
  $("group-cancel").addEventListener("click", () => latest && latest.abort());
  const run = () => {
    const files = [...input.files];
    if (!files.length) return;
    if (latest) latest.abort();
    const controller = new AbortController();
    const { signal } = controller;
    latest = controller;
    const rows = photoRows(files);
    let stopped = false; // once stopped, photos still being prepared leave their line as it is
    const mark = (i, state, text) => stopped || markRow(rows[i], state, text);
    progress.value = 0;
    $("group-working").hidden = false;
    const photos = plural(files.length, "photo");
    busy(parts, `Finding the faces of ${photos}…`, async () => {
      const model = chosenModel("group-model");
      const far = $("group-strictness").value;
      let finished = false;
      let done = 0;
      try {
        const embedded = await inFlight(files, GROUP_IN_FLIGHT, async (file, i) => {
          const result = await embedPhoto(file, i, model, mark, signal);
          done += 1;
          progress.value = done / files.length;
          parts.status.textContent = `Finding the faces of ${photos}: ${done} done…`;
          return result;
        }, signal);
        const faces = embedded.flatMap((photo) => photo.faces || []);
        parts.status.textContent = `Grouping ${plural(faces.length, "face")}…`;
        const report = await sendJson("/v1/group/embeddings", {
          model: model || undefined,
          far: far ? Number(far) : undefined,
          images: files.length,
          faces,
          errors: embedded.filter((photo) => photo.error).map((photo) => photo.error),
        }, { signal });
        finished = true;
        showGroups(report, files, embedded.map((photo) => photo.ready), mark);
      } finally {
        if (!finished) {
          stopped = true;
          rows.forEach((row) => markRow(row, "stopped", "not grouped"));
        }
        if (signal.aborted && latest === controller) {
          input.value = ""; // so that choosing the same photos again groups them
          input.dispatchEvent(new Event("change"));
        }
        if (latest === controller) $("group-working").hidden = true;
      }
    }, () => latest === controller);
  };
  input.addEventListener("change", run);
  $("group-model").addEventListener("change", run);
  $("group-strictness").addEventListener("change", run);
}

/** Shows a /v1/group `report` on `files` (prepared as `ready`), marking each photo done. */
function showGroups(report, files, ready, mark) {
  const parts = partsOf("group");
  const byName = new Map(files.map((file, i) => [file.name, ready[i]]));
  const found = new Map();
  for (const group of report.groups) {
    for (const face of group.faces) found.set(face.image, (found.get(face.image) || 0) + 1);
  }
  const failed = new Map(report.errors.map((e) => [e.image, e.error]));
  files.forEach((file, i) => {
    if (failed.has(file.name)) mark(i, "failed", failed.get(file.name));
    else mark(i, "done", plural(found.get(file.name) || 0, "face"));
  });
  $("group-summary").textContent = `${plural(report.people, "person", "people")} among `
    + `${plural(report.faces, "face")} in ${plural(report.images, "photo")}`;
  $("group-list").replaceChildren(...report.groups.map((group) => {
    const name = el("input", { type: "text", placeholder: "name", class: "enrol-name",
      "aria-label": `Name of person ${group.person}` });
    const enrol = el("button", { type: "button", class: "enrol-group", text: "Enrol" });
    enrol.addEventListener("click", () => busy(keepingResult(parts),
      `Enrolling person ${group.person}…`, () => enrolGroup(group, byName, name.value.trim())));
    enterClicks(name, enrol);
    return el("li", { class: "group", "data-person": String(group.person) },
      el("h3", { text: `Person ${group.person} · ${plural(group.faces.length, "face")}` }),
      el("div", { class: "thumbs" }, ...group.faces.map((face) => {
        const thumb = thumbnail(byName.get(face.image).image, face.box);
        thumb.title = face.image;
        return thumb;
      })),
      el("div", { class: "row enrol" }, name, enrol));
  }));
  $("group-errors").replaceChildren(...report.errors.map((e) => el("li", {
    text: `${e.image}: ${e.error}`,
  })));
  parts.result.hidden = false;
}

// ---------------------------------------------------------------- people

/** Asks before deleting: whether the user confirmed `question`. */
const confirmed = (question) => window.confirm(question);

/** The people view of the chosen collection: each person with their faces' thumbnails (kept
 * by this browser when it enrolled them, else their initials) and what can be changed. */
async function showPeople() {
  const parts = partsOf("people");
  const collection = $("people-collection").value;
  $("people-delete-collection").hidden = !collection;
  if (!collection) {
    $("people-list").replaceChildren();
    parts.result.hidden = true;
    parts.status.textContent = "No collection yet: create one on Enrol & identify.";
    return;
  }
  let faces;
  try {
    faces = await api(inCollection(collection, "/faces"));
  } catch (error) {
    showError(parts, error);
    return;
  }
  forgetThumbnails(collection, new Set(faces.map((face) => face.id)));
  const byPerson = new Map();
  for (const face of faces) byPerson.set(face.person, [...(byPerson.get(face.person) || []), face]);
  const names = [...byPerson.keys()].sort((a, b) => a.localeCompare(b));
  $("people-list").replaceChildren(...names.map((person) => personCard(
    collection, person, byPerson.get(person))));
  parts.error.hidden = true;
  parts.result.hidden = false;
  parts.status.textContent = names.length ? `${plural(names.length, "person", "people")}, `
    + `${plural(faces.length, "face")} in ${collection}.` : `${collection} is empty.`;
}

/** A person's card of the people view: name (editable), faces, delete buttons. */
function personCard(collection, person, faces) {
  const parts = keepingResult(partsOf("people"));
  const change = (message, work) => busy(parts, message, async () => {
    const said = await work();
    await refreshCollections();
    return said;
  });
  const name = el("input", { type: "text", class: "person-name", value: person,
    "aria-label": `Name of ${person}` });
  const rename = el("button", { type: "button", class: "rename", text: "Rename" });
  rename.addEventListener("click", () => change(`Renaming ${person}…`, async () => {
    const to = name.value.trim();
    if (!to || to === person) throw new ApiError("type the person's new name");
    await sendJson(inCollection(collection, `/persons/${encodeURIComponent(person)}`),
      { name: to });
    return `Renamed ${person} to ${to}.`;
  }));
  enterClicks(name, rename);
  const remove = el("button", { type: "button", class: "danger delete-person",
    text: "Delete person" });
  remove.addEventListener("click", () => {
    const question = `Delete ${person} and ${plural(faces.length, "face")} from ${collection}?`;
    if (!confirmed(question)) return;
    change(`Deleting ${person}…`, async () => {
      const done = await api(inCollection(collection, `/persons/${encodeURIComponent(person)}`),
        { method: "DELETE" });
      return `Deleted ${person} (${plural(done.faces, "face")}).`;
    });
  });
  const thumbs = faces.slice(0, PERSON_FACES).map((face) => {
    const src = thumbnailOf(collection, face);
    const picture = src ? el("img", { src, alt: `face ${face.id} of ${person}`, class: "thumb" })
      : el("span", { class: "thumb initials", text: initials(person),
        title: "enrolled from another browser or the command line: no thumbnail here" });
    const drop = el("button", { type: "button", class: "delete-face", text: "×",
      "aria-label": `Delete face ${face.id}`, title: "Delete this face" });
    drop.addEventListener("click", () => {
      if (!confirmed(`Delete this face of ${person}?`)) return;
      change("Deleting a face…", async () => {
        await api(inCollection(collection, `/faces/${face.id}`), { method: "DELETE" });
        return faces.length > 1 ? `Deleted a face of ${person}.`
          : `Deleted the last face of ${person}, and ${person}.`;
      });
    });
    const added = new Date(face.created).toLocaleDateString("en-GB",
      { day: "numeric", month: "short", year: "numeric" });
    const caption = face.source.startsWith("<") ? added : face.source; // a file's name
    return el("figure", { class: "face-thumb", "data-face": String(face.id) }, picture, drop,
      el("figcaption", { text: caption, title: `${face.source}, added ${added}` }));
  });
  return el("li", { class: "person", "data-person": person },
    el("div", { class: "row" }, name, rename, remove,
      el("span", { class: "hint", text: plural(faces.length, "face") })),
    el("div", { class: "thumbs" }, ...thumbs, ...(faces.length > PERSON_FACES
      ? [el("span", { class: "more", text: `and ${faces.length - PERSON_FACES} more` })] : [])));
}

/** "AW" for "Abdoulaye Wade": what stands for a face without a thumbnail. */
const initials = (name) => name.split(/\s+/).filter(Boolean).slice(0, 2)
  .map((word) => [...word][0].toUpperCase()).join("");

function setUpPeople() {
  const parts = keepingResult(partsOf("people"));
  $("people-collection").addEventListener("change", showPeople);
  $("people-forget").addEventListener("click", async () => {
    localStorage.removeItem(THUMB_STORAGE);
    await showPeople();
    parts.status.textContent = "This browser keeps no thumbnail now.";
  });
  $("people-delete-collection").addEventListener("click", () => {
    const collection = $("people-collection").value;
    const c = collections.get(collection);
    const what = c
      ? ` with ${plural(c.persons, "person", "people")} and ${plural(c.faces, "face")}` : "";
    if (!collection || !confirmed(`Delete the collection ${collection}${what}?`)) return;
    busy(parts, `Deleting ${collection}…`, async () => {
      await api(inCollection(collection, ""), { method: "DELETE" });
      forgetThumbnails(collection);
      await refreshCollections();
      return `Deleted the collection ${collection}.`;
    });
  });
}

setUpTabs();
setUpStrictness();
setUpDropZones();
setUpKey();
setUpAnalyze();
setUpCompare();
setUpIdentify();
setUpGroup();
setUpPeople();
loadModels().then(refreshCollections);
