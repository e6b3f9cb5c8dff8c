// Items ticked "compare": zero-shot bars for the last one, a similarity heatmap for all.
// Plain JavaScript, no libraries, only this server's own API; the page's scripts share
// globals and run in order (api.js, capture.js, selection.js, app.js). See docs/app.md.
"use strict";

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
