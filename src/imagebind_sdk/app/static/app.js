// The search page: plain JavaScript, no libraries, only this server's own API.
// Hooks for automation (docs/app.md): #query-text #query-file #search-button #results,
// result elements [data-id][data-path][data-kind][data-score], #labels-input #zero-shot
// #heatmap #error.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "imagebind-sdk.api-key";
const MAX_SELECTED = 16;
const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;
const IMAGE_KINDS = ["vision", "depth", "thermal"];
const FILE_KINDS = ["vision", "video", "audio", "depth", "thermal", "imu"];

const state = {
  key: localStorage.getItem(KEY_STORE) || "",
  terms: [],          // {type: "text"|"file"|"id", label, weight, text?, kind?, b64?, id?}
  selected: [],       // item ids ticked "compare", in tick order
  items: new Map(),   // id -> result shown (for labels)
  blobUrls: [],
  ready: false,
  searches: 0,        // answers shown so far (body[data-searches]: scripts wait on it)
};

// ---- errors and the API -----------------------------------------------------------
function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let keyWaiters = [];

function askForKey(refused) {
  $("key-panel").hidden = false;
  $("key-error").hidden = !refused;
  $("api-key").focus();
  return new Promise((resolve) => keyWaiters.push(resolve));
}

function keyGiven() {
  const key = $("api-key").value.trim();
  if (!key) return;
  state.key = key;
  localStorage.setItem(KEY_STORE, key);
  $("key-panel").hidden = true;
  const waiters = keyWaiters;
  keyWaiters = [];
  waiters.forEach((resolve) => resolve());
}

// fetch() of this server's API with the key; 401 asks for the key and tries again.
async function api(path, options = {}, refused = false) {
  const headers = Object.assign({}, options.headers || {});
  if (state.key) headers.Authorization = "Bearer " + state.key;
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw new ApiError(0, "The server did not answer: is imagebind-sdk still running?");
  }
  if (response.status === 401) {
    await askForKey(refused || Boolean(state.key));
    return api(path, options, true);
  }
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try {
      const body = await response.json();
      if (body && body.error) message = typeof body.error === "string" ? body.error : body.error.message;
    } catch (err) { /* not JSON: keep the status line */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

async function apiJson(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  return (await api(path, options)).json();
}

// A URL for <img>/<audio>/<video>: the API URL itself, or (with a key, which such elements
// cannot send) a blob URL of the file fetched with the key.
async function mediaUrl(path) {
  if (!state.key) return path;
  const blob = await (await api(path)).blob();
  const url = URL.createObjectURL(blob);
  state.blobUrls.push(url);
  return url;
}

// ---- readiness ---------------------------------------------------------------------
async function pollStatus() {
  let status;
  try {
    status = await apiJson("/v1/app/status");
  } catch (err) {
    $("status").textContent = err.message;
    setTimeout(pollStatus, 2000);
    return;
  }
  const bar = $("progress");
  if (status.stage === "ready") {
    bar.hidden = true;
    $("status").textContent = `Ready: ${status.items} items (${status.kinds.join(", ")}).`;
    showKinds(status.kinds);
    state.ready = true;
    $("search-button").disabled = false;
    document.body.dataset.ready = "true";
    return;
  }
  if (status.stage === "failed") {
    bar.hidden = true;
    $("status").textContent = "Indexing failed.";
    showError(status.message);
    return;
  }
  bar.hidden = false;
  bar.max = Math.max(status.total, 1);
  bar.value = status.done;
  $("status").textContent = status.stage === "indexing"
    ? `Indexing: ${status.done} of ${status.total} files…` : "Loading the model…";
  setTimeout(pollStatus, 500);
}

function showKinds(kinds) {
  const box = $("kinds");
  box.querySelectorAll("label").forEach((label) => label.remove());
  kinds.forEach((kind) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.value = kind;
    input.checked = true;
    label.append(input, " " + kind);
    box.append(label);
  });
}

// ---- query terms (chips) -------------------------------------------------------------
function kindOfFile(file) {
  const name = file.name.toLowerCase();
  if (name.endsWith(".csv")) return "imu";
  const type = (file.type || "").split("/")[0];
  return { image: "vision", audio: "audio", video: "video" }[type] || null;
}

function readBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new Error("could not read the file"));
    reader.readAsDataURL(blob);
  });
}

async function addFile(file, kind) {
  clearError();
  kind = kind || kindOfFile(file);
  if (!kind) return showError(`Cannot tell what kind of file "${file.name}" is: pick an image, audio, video or IMU .csv file.`);
  if (file.size > MAX_UPLOAD_BYTES) return showError(`"${file.name}" is larger than 64 MB.`);
  if (file.size === 0) return showError(`"${file.name}" is empty.`);
  state.terms.push({ type: "file", label: file.name, kind, b64: await readBase64(file), weight: 1 });
  renderChips();
}

function addText() {
  const text = $("query-text").value.trim();
  if (!text) return;
  state.terms.push({ type: "text", label: text, text, weight: 1 });
  $("query-text").value = "";
  renderChips();
}

function addItem(id, weight = 1) {
  const item = state.items.get(id);
  state.terms.push({ type: "id", label: item ? baseName(item.path) : "#" + id, id, weight });
  renderChips();
}

function renderChips() {
  const list = $("chips");
  list.replaceChildren();
  state.terms.forEach((term, index) => {
    const chip = document.createElement("li");
    chip.className = "chip";
    chip.dataset.type = term.type;
    const weight = document.createElement("input");
    weight.type = "number";
    weight.step = "0.5";
    weight.value = String(term.weight);
    weight.className = "weight";
    weight.setAttribute("aria-label", `weight of ${term.label}`);
    weight.addEventListener("change", () => { term.weight = Number(weight.value) || 0; });
    const name = document.createElement("span");
    name.textContent = (term.type === "file" ? term.kind + ": " : term.type === "id" ? "item: " : "") + term.label;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `remove ${term.label}`);
    remove.addEventListener("click", () => { state.terms.splice(index, 1); renderChips(); });
    chip.append(weight, name);
    if (term.type === "file" && IMAGE_KINDS.includes(term.kind)) chip.append(kindPicker(term));
    chip.append(remove);
    list.append(chip);
  });
}

function kindPicker(term) {
  const select = document.createElement("select");
  select.setAttribute("aria-label", `input kind of ${term.label}`);
  IMAGE_KINDS.forEach((kind) => select.append(new Option(kind, kind, false, kind === term.kind)));
  select.addEventListener("change", () => { term.kind = select.value; });
  return select;
}

function queryTerms() {
  const terms = state.terms.map((t) => {
    const weight = t.weight;
    if (t.type === "text") return { text: t.text, weight };
    if (t.type === "id") return { id: t.id, weight };
    return { [t.kind]: { b64: t.b64 }, weight };
  });
  const text = $("query-text").value.trim();
  if (text) terms.push({ text });
  return terms;
}

// ---- search and results --------------------------------------------------------------
async function search(terms) {
  clearError();
  if (!state.ready) return showError("The index is not ready yet.");
  if (!terms.length) return showError("Type some text, pick a file, record a sound or take a snapshot first.");
  const kinds = [...$("kinds").querySelectorAll("input:checked")].map((input) => input.value);
  if (!kinds.length) return showError("Tick at least one kind to search.");
  const button = $("search-button");
  button.disabled = true;
  $("results").setAttribute("aria-busy", "true");
  try {
    const body = await apiJson("/v1/search", { query: terms, top_k: Number($("top-k").value), kinds });
    showResults(body.results);
  } catch (err) {
    showError(err.message);
    document.body.dataset.errors = String(Number(document.body.dataset.errors || 0) + 1);
  } finally {
    button.disabled = false;
    $("results").removeAttribute("aria-busy");
  }
}

function baseName(path) { return path.split(/[\\/]/).pop(); }

function clock(seconds) {
  const s = Math.max(0, seconds);
  return `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

function showResults(results) {
  state.blobUrls.forEach((url) => URL.revokeObjectURL(url));
  state.blobUrls = [];
  const grid = $("results");
  grid.replaceChildren(...results.map(resultCard));
  $("results-note").textContent = results.length ? `(${results.length})` : "(nothing matched)";
  document.body.dataset.searches = String(++state.searches);
}

function resultCard(result) {
  state.items.set(result.id, result);
  const card = $("result-template").content.firstElementChild.cloneNode(true);
  Object.assign(card.dataset, {
    id: String(result.id), path: result.path, kind: result.kind, score: result.score.toFixed(6),
  });
  card.setAttribute("aria-label", `${baseName(result.path)}, ${result.kind}, score ${result.score.toFixed(3)}`);
  card.querySelector(".score").textContent = result.score.toFixed(3);
  const name = card.querySelector(".name");
  name.textContent = baseName(result.path);
  name.title = result.path;
  if (result.start_s !== null && result.start_s !== undefined) {
    card.querySelector(".when").textContent = `${clock(result.start_s)}–${clock(result.end_s)}`;
  }
  fillMedia(card.querySelector(".media"), result).catch((err) => {
    card.querySelector(".media").textContent = "cannot show: " + err.message;
  });
  card.querySelector(".more").addEventListener("click", () => search([{ id: result.id }]));
  card.querySelector(".add").addEventListener("click", () => addItem(result.id));
  const box = card.querySelector(".select");
  box.checked = state.selected.includes(result.id);
  box.addEventListener("change", () => toggleSelected(result.id, box));
  card.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target === card) search([{ id: result.id }]);
  });
  return card;
}

async function fillMedia(box, result) {
  const base = `/v1/items/${result.id}`;
  const start = result.start_s || 0;
  if (IMAGE_KINDS.includes(result.kind)) {
    const img = document.createElement("img");
    img.alt = baseName(result.path);
    img.loading = "lazy";
    img.title = "More like this";
    img.addEventListener("click", () => search([{ id: result.id }]));
    box.append(img);
    img.src = await mediaUrl(base + "/thumbnail");
  } else if (result.kind === "audio" || result.kind === "video") {
    const player = document.createElement(result.kind);
    player.controls = true;
    player.preload = "metadata";
    if (result.kind === "video") player.playsInline = true;
    // Start at the matching moment: a media fragment, and a seek once the length is known.
    player.addEventListener("loadedmetadata", () => { if (start && player.currentTime < start) player.currentTime = start; });
    box.append(player);
    const end = result.end_s ? "," + result.end_s : "";
    player.src = (await mediaUrl(base + "/media")) + (start || end ? `#t=${start}${end}` : "");
    if (result.kind === "video" && !state.key) player.poster = base + "/thumbnail";
  } else {
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = `${result.kind} recording`;
    box.append(note);
  }
}

// ---- selection: zero-shot and heatmap ------------------------------------------------------
function toggleSelected(id, box) {
  const at = state.selected.indexOf(id);
  if (box.checked && at < 0) {
    if (state.selected.length >= MAX_SELECTED) {
      box.checked = false;
      return showError(`At most ${MAX_SELECTED} items can be compared.`);
    }
    state.selected.push(id);
  } else if (!box.checked && at >= 0) {
    state.selected.splice(at, 1);
  }
  const last = state.items.get(state.selected[state.selected.length - 1]);
  $("zs-target").textContent = last ? `Classifying ${baseName(last.path)} (${last.kind}).` : 'Tick "compare" on a result to classify it.';
  renderHeatmap().catch((err) => showError(err.message));
}

async function zeroShot() {
  clearError();
  const id = state.selected[state.selected.length - 1];
  if (id === undefined) return showError('Tick "compare" on a result first: zero-shot classifies that item.');
  const labels = $("labels-input").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (!labels.length) return showError("Type at least one label, e.g. dog, car, bird.");
  try {
    const body = await apiJson("/v1/items/zero-shot", { id, labels });
    renderBars(body.labels, body.probabilities);
  } catch (err) {
    showError(err.message);
  }
}

function renderBars(labels, probabilities) {
  const order = labels.map((label, i) => [label, probabilities[i]]).sort((a, b) => b[1] - a[1]);
  $("zero-shot").replaceChildren(...order.map(([label, p]) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.label = label;
    row.dataset.probability = String(p);
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = (100 * p).toFixed(1) + "%";
    track.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = (100 * p).toFixed(1) + "%";
    row.append(name, track, pct);
    return row;
  }));
}

async function renderHeatmap() {
  const box = $("heatmap");
  if (state.selected.length < 2) {
    box.replaceChildren();
    return;
  }
  const body = await apiJson("/v1/items/similarity", { ids: state.selected });
  const names = body.ids.map((id) => baseName((state.items.get(id) || { path: "#" + id }).path));
  const table = document.createElement("table");
  table.className = "heat";
  const head = table.createTHead().insertRow();
  head.append(document.createElement("th"));
  names.forEach((name, j) => {
    const th = document.createElement("th");
    th.textContent = String(j + 1);
    th.title = name;
    head.append(th);
  });
  const rows = table.createTBody();
  // Colours span the off-diagonal range: a model's similarities often share a narrow band.
  const off = body.matrix.flatMap((values, i) => values.filter((_, j) => j !== i));
  const low = Math.min(...off);
  const span = Math.max(Math.max(...off) - low, 1e-6);
  body.matrix.forEach((values, i) => {
    const row = rows.insertRow();
    const th = document.createElement("th");
    th.textContent = `${i + 1}. ${names[i]}`;
    row.append(th);
    values.forEach((value, j) => {
      const cell = row.insertCell();
      Object.assign(cell.dataset, { row: String(i), col: String(j), value: String(value) });
      cell.textContent = value.toFixed(2);
      cell.title = `${names[i]} × ${names[j]}: ${value.toFixed(4)}`;
      const t = Math.max(0, Math.min(1, (value - low) / span));
      cell.style.backgroundColor = `hsl(${Math.round(220 - 200 * t)}, 70%, ${Math.round(88 - 40 * t)}%)`;
    });
  });
  box.replaceChildren(table);
}

// ---- microphone and webcam -------------------------------------------------------------
let recorder = null;

async function toggleMic() {
  clearError();
  const button = $("mic");
  if (recorder) { recorder.stop(); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    return showError("The microphone is not available: " + err.message);
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    recorder = null;
    button.textContent = "Record sound";
    button.setAttribute("aria-pressed", "false");
    const blob = new Blob(chunks, { type: chunks[0] ? chunks[0].type : "audio/webm" });
    await addFile(new File([blob], "microphone.webm", { type: blob.type }), "audio");
  };
  recorder.start();
  button.textContent = "Stop recording";
  button.setAttribute("aria-pressed", "true");
  setTimeout(() => { if (recorder) recorder.stop(); }, 10000);  // at most 10 s
}

let camera = null;

async function toggleWebcam() {
  clearError();
  if (camera) return stopWebcam();
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (err) {
    return showError("The webcam is not available: " + err.message);
  }
  const video = $("camera");
  video.srcObject = camera;
  video.hidden = false;
  $("snap").hidden = false;
  $("webcam").setAttribute("aria-pressed", "true");
  await video.play();
}

function stopWebcam() {
  if (camera) camera.getTracks().forEach((track) => track.stop());
  camera = null;
  $("camera").hidden = true;
  $("snap").hidden = true;
  $("webcam").setAttribute("aria-pressed", "false");
}

function snap() {
  const video = $("camera");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => {
    stopWebcam();
    if (blob) addFile(new File([blob], "webcam.jpg", { type: "image/jpeg" }), "vision");
  }, "image/jpeg", 0.92);
}

// ---- wiring ---------------------------------------------------------------------------------
function wire() {
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); search(queryTerms()); });
  $("add-text").addEventListener("click", addText);
  $("query-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) addFile(file).catch((err) => showError(err.message));
    event.target.value = "";
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    [...event.dataTransfer.files].forEach((file) => addFile(file).catch((err) => showError(err.message)));
  });
  const media = navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder;
  $("mic").disabled = !media;
  $("webcam").disabled = !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  $("mic").addEventListener("click", toggleMic);
  $("webcam").addEventListener("click", toggleWebcam);
  $("snap").addEventListener("click", snap);
  $("zero-shot-button").addEventListener("click", zeroShot);
  $("labels-input").addEventListener("keydown", (event) => { if (event.key === "Enter") zeroShot(); });
  $("key-button").addEventListener("click", keyGiven);
  $("api-key").addEventListener("keydown", (event) => { if (event.key === "Enter") keyGiven(); });
}

wire();
pollStatus();
