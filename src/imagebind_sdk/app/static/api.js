// The page's connection to its server: state, errors, the API key, API calls.
// Plain JavaScript, no libraries, only this server's own API; the page's scripts share
// globals and run in order (api.js, capture.js, selection.js, app.js). See docs/app.md.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "imagebind-sdk.api-key";
const MAX_SELECTED = 16;
const IMAGE_KINDS = ["vision", "depth", "thermal"];

const state = {
  key: localStorage.getItem(KEY_STORE) || "",
  terms: [],          // {type: "text"|"file"|"id", label, weight, text?, kind?, b64?, id?}
  selected: [],       // item ids ticked "compare", in tick order
  items: new Map(),   // id -> result shown (for labels)
  blobUrls: [],
  ready: false,
  searches: 0,        // answers shown so far (body[data-searches]: scripts wait on it)
  maxUpload: 46 * 1024 * 1024,  // file bytes; base64 in JSON grows them by 4/3 (set from the server's limit)
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
