// kao's web page: four pages (analyze, compare, enrol & identify, group) that call the JSON
// API of `kao serve` and draw its answers on canvases. No framework, no build step, nothing
// loaded from elsewhere.
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

/** The JSON answer of `path`, or an ApiError with the server's {"error": ...} message. */
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = localStorage.getItem(KEY_STORAGE);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch {
    throw new ApiError("cannot reach the kao server: is it still running?");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: reported below
  }
  if (!response.ok) {
    if (response.status === 401) showKeyBox(NEED_KEY);
    const message = body && typeof body.error === "string" ? body.error
      : `the server answered ${response.status} ${response.statusText}`.trim();
    throw new ApiError(message, response.status);
  }
  if (body === null) throw new ApiError("the server's answer is not JSON", response.status);
  return body;
}

/** A multipart body: each value is a string, a File, or a list of Files (one part each). */
function formOf(fields) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) form.append(name, item);
  }
  return form;
}

const post = (path, fields) => api(path, { method: "POST", body: formOf(fields) });
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
 * the status line; a failure goes to the error box, the result area is then hidden. */
async function busy(parts, message, work) {
  parts.error.hidden = true;
  parts.status.textContent = message;
  parts.status.classList.add("working");
  try {
    parts.status.textContent = (await work()) || "";
  } catch (error) {
    parts.status.textContent = "";
    parts.result.hidden = true;
    showError(parts, error);
  } finally {
    parts.status.classList.remove("working");
  }
}

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
      const chosen = names.length > 3 ? `${plural(names.length, "photo")} chosen` : names.join(", ");
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

/** One bar per emotion, the likeliest in bold. */
function emotionBars(emotion) {
  const best = EMOTIONS.reduce((a, b) => (emotion[b] > emotion[a] ? b : a));
  return el("div", { class: "emotions" }, ...EMOTIONS.map((name) => el(
    "div", { class: name === best ? "emotion best" : "emotion" },
    el("span", { class: "name", text: name }),
    el("span", {
      class: "bar", role: "meter", "aria-label": name, "aria-valuemin": "0",
      "aria-valuemax": "1", "aria-valuenow": String(emotion[name]),
    }, el("span", { style: { width: percent(emotion[name]) } })),
    el("span", { class: "value", text: percent(emotion[name]) }),
  )));
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

function describeFace(face, i) {
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
  if (face.emotion) card.append(emotionBars(face.emotion));
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
      const [record, image] = await Promise.all(
        [post("/v1/analyze", { image: file }), loadImage(file)]);
      const count = record.faces.length;
      if (!count) throw new ApiError(`No face found in ${file.name}.`);
      const paint = drawPhoto($("analyze-canvas"), image, record.width, record.height);
      record.faces.forEach((face, i) => {
        if (face.landmarks_68) paint.points(face.landmarks_68, "#ffef5a");
        paint.box(face.box, colorOf(i), String(i + 1));
      });
      $("analyze-canvas").dataset.faces = record.faces.length;
      $("analyze-faces").replaceChildren(...record.faces.map(describeFace));
      parts.result.hidden = false;
      return `${plural(count, "face")} in ${file.name} (${record.width} × ${record.height}).`;
    });
  });
}

// ---------------------------------------------------------------- compare

function setUpCompare() {
  const parts = partsOf("compare");
  const inputs = [$("compare-a"), $("compare-b")];
  const run = () => {
    const [a, b] = inputs.map((input) => input.files[0]);
    if (!a || !b) return;
    busy(parts, "Comparing…", async () => {
      const path = withQuery("/v1/verify",
        { model: chosenModel("compare-model"), far: $("compare-strictness").value });
      const [result, imageA, imageB] = await Promise.all(
        [post(path, { a, b }), loadImage(a), loadImage(b)]);
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
  inputs.forEach((input) => input.addEventListener("change", run));
  $("compare-model").addEventListener("change", run);
  $("compare-strictness").addEventListener("change", run);
}

// ---------------------------------------------------------------- enrol & identify

const identifyParts = () => partsOf("identify");

/** The collections as GET /v1/collections last listed them, by name. */
const collections = new Map();

/** "dlib ResNet (128-d)": the model collection `c` is pinned to; "" when it has none yet (or
 * the server does not say). */
const collectionModel = (c) => (c && c.model ? modelLabel(c.model) : "");

/** Fills the collection list (keeping the choice, else choosing `wanted`), then its persons. */
async function refreshCollections(wanted) {
  const select = $("collection");
  const keep = wanted || select.value;
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
  select.replaceChildren(...listed.map((c) => {
    const counts = `${plural(c.persons, "person", "people")}, ${plural(c.faces, "face")}`;
    const model = c.model ? ` · ${modelLabel(c.model)}` : "";
    return el("option", { value: c.collection, text: `${c.collection} (${counts})${model}` });
  }));
  if (!listed.length) {
    select.append(el("option", { value: "", text: "no collection yet: create one" }));
  }
  if (collections.has(keep)) select.value = keep;
  await refreshPersons();
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
      await api("/v1/collections", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name }),
      });
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
      const images = [...input.files];
      const done = await postToCollection(collection, "/enroll", { person, images });
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
      const [found, image] = await Promise.all(
        [postToCollection(collection, "/identify", { image: file },
          $("identify-strictness").value), loadImage(file)]);
      if (!found.faces.length) throw new ApiError(`No face found in ${file.name}.`);
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
      const known = found.faces.filter((f) => f.person !== null).length;
      return `${known} of ${plural(cards.length, "face")} recognised in ${collection}.`;
    });
  });
}

// ---------------------------------------------------------------- group

function setUpGroup() {
  const parts = partsOf("group");
  const input = $("group-files");
  const run = () => {
    const files = [...input.files];
    if (!files.length) return;
    busy(parts, `Grouping the faces of ${files.length} photos…`, async () => {
      const path = withQuery("/v1/group",
        { model: chosenModel("group-model"), far: $("group-strictness").value });
      const [report, ...images] = await Promise.all(
        [post(path, { images: files }), ...files.map(loadImage)]);
      const byName = new Map(files.map((file, i) => [file.name, images[i]]));
      $("group-summary").textContent = `${plural(report.people, "person", "people")} among `
        + `${plural(report.faces, "face")} in ${plural(report.images, "photo")}`;
      $("group-list").replaceChildren(...report.groups.map((group) => el("li", { class: "group" },
        el("h3", { text: `Person ${group.person} · ${plural(group.faces.length, "face")}` }),
        el("div", { class: "thumbs" }, ...group.faces.map((face) => {
          const thumb = thumbnail(byName.get(face.image), face.box);
          thumb.title = face.image;
          return thumb;
        })))));
      $("group-errors").replaceChildren(...report.errors.map((e) => el("li", {
        text: `${e.image}: ${e.error}`,
      })));
      parts.result.hidden = false;
    });
  };
  input.addEventListener("change", run);
  $("group-model").addEventListener("change", run);
  $("group-strictness").addEventListener("change", run);
}

setUpTabs();
setUpStrictness();
setUpDropZones();
setUpKey();
setUpAnalyze();
setUpCompare();
setUpIdentify();
setUpGroup();
loadModels().then(refreshCollections);
