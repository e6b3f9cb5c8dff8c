// The search page: plain JavaScript, no libraries, only this server's own API.
// Hooks for automation (docs/app.md): #query-text #query-file #search-button #results,
// result elements [data-id][data-path][data-kind][data-score], #labels-input #zero-shot
// #heatmap #error.
"use strict";

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
  if (status.max_request_bytes) state.maxUpload = Math.floor(status.max_request_bytes * 0.74);
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
  if (file.size > state.maxUpload) {
    const mb = (state.maxUpload / 1024 / 1024).toFixed(0);
    return showError(`"${file.name}" is larger than ${mb} MB, the largest file this server takes (--max-request-mb).`);
  }
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