// sketchrnn: draw together. The page: its models, its messages and its tabs. Every drawing is
// made here, in the visitor's browser, by sketchrnn.js (no request asks a server to draw); the
// modes are in together.js, latent.js and teach.js. Plain ES modules, no build step, nothing
// loaded from elsewhere.

import { canvasScale, fromStroke3, prepareDrawing, toStroke3 } from "./sketches.js";
import { PageError, fetchOfficial, isLoaded, loadModel, officialModels, openListing } from "./models.js";
import { setupTogether } from "./together.js";
import { setupLatent } from "./latent.js";
import { setupTeach } from "./teach.js";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

const state = {
  listing: null,
  entries: [], // the models this server or site has (listing entries)
  byName: {},
  official: [], // the collection's models not served yet: [{name, kind}]
  entry: null, // the selected model's entry
  mode: "together",
  loading: null, // {entry, promise} of the model arriving
};

// ----------------------------------------------------------------------------- messages

let errorTimer = null;

function showError(message) {
  $("#error-text").textContent = message;
  $("#error").hidden = false;
  document.body.dataset.error = message;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(hideError, 20000);
}

function hideError() {
  $("#error").hidden = true;
  delete document.body.dataset.error;
}

function setStatus(text) {
  $("#status").textContent = text;
}

let busyCount = 0;
function setBusy(on) {
  busyCount = Math.max(0, busyCount + (on ? 1 : -1));
  document.body.dataset.busy = busyCount > 0 ? "true" : "false";
}

/** A message with a button ("the model thinks it is finished: [Draw on]"). */
function offer(text, label, action) {
  $("#offer-text").textContent = text;
  const go = $("#offer-go");
  go.textContent = label;
  go.onclick = () => {
    clearOffer();
    action();
  };
  $("#offer").hidden = false;
}

function clearOffer() {
  $("#offer").hidden = true;
}

/** Run `fn` with the busy flag and the status `what…`, showing its error; undefined on failure. */
async function run(what, fn) {
  setBusy(true);
  setStatus(`${what}…`);
  clearOffer();
  try {
    const out = await fn();
    hideError();
    return out;
  } catch (e) {
    if (e.name !== "AbortError") {
      showError(e.message);
      setStatus("");
    }
    return undefined;
  } finally {
    setBusy(false);
  }
}

const messages = { showError, hideError, setStatus, offer, clearOffer, run, setBusy };

// ----------------------------------------------------------------------------- the model

function can(capability, entry = state.entry) {
  return Boolean(entry && entry.capabilities[capability]);
}

function temperature() {
  return Number($("#temperature").value);
}

/** The class a class-conditional model draws (the picker's), else undefined. */
function label(entry = state.entry) {
  if (!entry || !entry.class_conditional) return undefined;
  return entry === state.entry ? $("#class").value || entry.classes[0] : entry.classes[0];
}

/** What the model draws, for the prompt "draw a ...". */
function subject(entry = state.entry) {
  if (!entry) return "something";
  if (entry.class_conditional) return (label(entry) || "something").replaceAll("_", " ");
  if (entry.classes && entry.classes.length === 1) return entry.classes[0].replaceAll("_", " ");
  return "something";
}

function article(word) {
  return word === "something" ? word : `${/^[aeiou]/i.test(word) ? "an" : "a"} ${word}`;
}

/**
 * The selected model, loaded (it may still be arriving: this waits). Null, with the
 * reason shown, when it cannot be loaded or the selection changed meanwhile.
 */
async function model() {
  const entry = state.entry;
  if (!entry) return null;
  try {
    const m = await ensureLoaded(entry);
    return state.entry === entry ? m : null;
  } catch (e) {
    if (state.entry === entry) showError(e.message);
    return null;
  }
}

function ensureLoaded(entry) {
  if (state.loading && state.loading.entry === entry) return state.loading.promise;
  const first = !isLoaded(entry);
  let total = 0;
  if (first) showLoading(entry, entry.portable_ready === false
    ? `converting ${entry.name} for your browser (the first time only: up to a minute)`
    : `loading ${entry.name}`);
  const promise = loadModel(entry, (bytes) => {
    if (!total) total = entry.portable_bytes || 0;
    if (state.entry !== entry) return; // another model was picked meanwhile
    const size = total ? `${(bytes / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB` : `${(bytes / 1e6).toFixed(1)} MB`;
    showLoading(entry, `loading ${entry.name}: ${size}`, total ? bytes / total : null);
  }).catch((e) => {
    throw new PageError(loadFailure(entry, e));
  });
  state.loading = { entry, promise };
  promise.then(() => hideLoading(entry), () => hideLoading(entry));
  return promise;
}

function loadFailure(entry, e) {
  const runtime = state.listing && state.listing.runtime;
  if (runtime && !runtime.ready) return runtime.message;
  if (/dynamically imported module|import/i.test(String(e.message)) && !String(e.message).includes("manifest")) {
    return `the browser runtime (onnxruntime-web) did not load: ${e.message}`;
  }
  return `cannot load ${entry.name}: ${e.message}`;
}

let loadingFor = null; // the model the loading banner is about

function showLoading(entry, text, fraction = null) {
  loadingFor = entry;
  const box = $("#loading");
  box.hidden = false;
  $("#loading-prompt").textContent = `Draw ${article(subject(entry))} while it arrives`;
  $("#loading-text").textContent = text;
  const bar = $("#loading-progress");
  if (fraction === null) bar.removeAttribute("value");
  else bar.value = Math.min(1, fraction);
  document.body.dataset.loading = "true";
}

function hideLoading(entry = loadingFor) {
  if (entry !== loadingFor) return;
  loadingFor = null;
  $("#loading").hidden = true;
  document.body.dataset.loading = "false";
}

/**
 * A drawing on a surface of `size` as the model reads it: {rows, k}, stroke-3 rows in the
 * model's pixels and k, model pixels per surface pixel. Throws a PageError when the drawing
 * is longer than `maxPoints` even simplified.
 */
function toModel(strokes, size, { maxPoints = null, what = "the model reads", entry = state.entry } = {}) {
  const constants = state.listing.page;
  const k = scaleFor(size, entry);
  const rows = prepareDrawing(toStroke3(strokes.filter((s) => !s.ghost)), k, {
    scaleFactor: entry.scale_factor,
    epsilonUnits: constants.rdp_epsilon_units,
    maxGrowth: constants.max_epsilon_growth,
    maxPoints,
  });
  if (maxPoints !== null && rows.length > maxPoints) {
    throw new PageError(`the drawing has ${rows.length} points after simplification; ${what} at most ${maxPoints} (the model's max_seq_len): undo some strokes`, "too_many_points");
  }
  return { rows, k };
}

/** Model pixels per pixel of a surface of `size` (sketchrnn.generate.canvas_scale). */
function scaleFor(size, entry = state.entry) {
  return canvasScale(entry.typical_extent, size, state.listing.page.drawing_fill);
}

/** Model stroke-3 rows back on the surface: strokes from `start`, offsets divided by k. */
function fromModel(rows, k, { start = [0, 0], by = "model", extra = {} } = {}) {
  return fromStroke3(rows, { start, by, scale: 1 / k, extra });
}

/** A fresh seed for one drawing (the runtime's generator, reproducible from it). */
function newSeed() {
  return Math.floor(Math.random() * 2 ** 31);
}

function clampInt(input, lo, hi) {
  const v = Math.min(hi, Math.max(lo, Math.round(Number(input.value) || lo)));
  input.value = String(v);
  return v;
}

/** Another model of the listing (Mimic's second model), loaded. */
function modelOf(entry) {
  return entry === state.entry ? model() : loadModel(entry).catch((e) => {
    throw new PageError(loadFailure(entry, e));
  });
}

const page = {
  $, $$, state, messages, can, temperature, label, subject, article, model, toModel, fromModel, scaleFor, newSeed, clampInt, modelOf,
  emptyRetries: () => state.listing.page.empty_retries,
  regularization: () => state.listing.page.fewshot_regularization,
};

// ----------------------------------------------------------------------------- the modes

const together = setupTogether(page);
const latent = setupLatent(page);
const teach = setupTeach(page);

const MODE_NEEDS = {
  together: ["complete", "Draw together needs a model that draws strokes"],
  endings: ["complete", "Many endings needs a model that draws strokes"],
  mimic: ["reconstruct", "Mimic needs a VAE (a model with an encoder)"],
  morph: ["interpolate", "Morph needs a VAE (a model with a latent space)"],
  imitate: ["imitate", "Imitate copies a picture"],
};

function describeModel(m) {
  const modes = Object.entries(MODE_NEEDS).filter(([, [c]]) => m.capabilities[c]).map(([k]) => $(`#tabs [data-mode="${k}"]`).textContent);
  if (m.capabilities.classify && !m.capabilities.imitate) modes.push("Teach by example");
  return `${m.kind}${m.max_seq_len ? `, up to ${m.max_seq_len} points` : ""}. Modes: ${modes.join(", ") || "none"}.`;
}

function applyModel() {
  const m = state.entry;
  $("#model-kind").textContent = describeModel(m);
  $("#class-label").hidden = !m.class_conditional;
  if (m.class_conditional) {
    const keep = $("#class").value;
    $("#class").replaceChildren(...m.classes.map((c) => new Option(c, c)));
    if (m.classes.includes(keep)) $("#class").value = keep;
  }
  for (const tab of $$("#tabs [role=tab]")) {
    const [capability, why] = MODE_NEEDS[tab.dataset.mode];
    let ok = can(capability);
    if (tab.dataset.mode === "imitate") ok = ok || can("classify");
    tab.classList.toggle("unsupported", !ok);
    tab.dataset.unsupported = ok ? "false" : "true"; // still clickable: its panel says why
    tab.title = ok ? "" : `${why}; ${m.name}: ${m.reasons[capability] || "not available"}`;
  }
  for (const panel of $$(".panel")) {
    const [capability, why] = MODE_NEEDS[panel.dataset.mode];
    const ok = can(capability);
    const note = $(".unsupported", panel);
    note.hidden = ok;
    note.textContent = ok ? "" : `${why}: ${m.name} ${(m.reasons[capability] || "cannot").replace(/^this model /, "")}. ${vaeHint(m, capability)}`;
    panel.classList.toggle("disabled", !ok && !(panel.dataset.mode === "imitate" && can("classify")));
    for (const b of $$(".needs", panel)) b.disabled = !ok;
  }
  const teachNote = $(".classify-unsupported");
  teachNote.hidden = can("classify");
  teachNote.textContent = can("classify") ? "" : `Teaching by example needs a model with an encoder: ${m.name} ${(m.reasons.classify || "cannot").replace(/^this model /, "")}.`;
  for (const b of $$(".needs-classify")) b.disabled = !can("classify");
  latent.applyModel();
  document.body.dataset.model = m.name;
}

function vaeHint(m, capability) {
  if (capability !== "reconstruct" && capability !== "interpolate") return "Pick another model above.";
  const vae = state.official.find((o) => o.kind === "vae" && m.classes.length === 1 && o.name === m.classes[0]);
  return vae ? `Pick "${vae.name} (VAE)" above: the collection has it.` : "Pick another model above.";
}

function setMode(mode) {
  together.interrupt();
  if (mode !== state.mode && !$("#offer").hidden) {
    // The offer ("it takes the drawing as finished: [Draw on anyway]") and its status line
    // are about the mode being left: its button would act there, out of sight.
    clearOffer();
    setStatus("");
  }
  state.mode = mode;
  for (const tab of $$("#tabs [role=tab]")) tab.setAttribute("aria-selected", String(tab.dataset.mode === mode));
  for (const panel of $$(".panel")) panel.hidden = panel.dataset.mode !== mode;
  document.body.dataset.mode = mode;
  requestAnimationFrame(() => {
    together.render();
    latent.render();
    teach.render();
  });
}

// ----------------------------------------------------------------------------- the picker

const RANDOM = "__random__";

function fillPicker() {
  const select = $("#model");
  const here = document.createElement("optgroup");
  here.label = state.listing.static ? "Models of this site" : "Models on this server";
  here.append(...state.entries.map((m) => new Option(`${m.name} (${m.kind})`, m.name)));
  const groups = [new Option("random", RANDOM), here];
  for (const [kind, title] of [["gen", "Official collection (fetched on demand)"], ["vae", "Official VAEs (also mimic and morph)"]]) {
    const list = state.official.filter((o) => o.kind === kind);
    if (!list.length) continue;
    const g = document.createElement("optgroup");
    g.label = title;
    g.append(...list.map((o) => new Option(kind === "vae" ? `${o.name} (VAE)` : o.name, `official:${o.name}:${o.kind}`)));
    groups.push(g);
  }
  select.replaceChildren(...groups);
  if (state.entry) select.value = state.entry.name;
}

async function loadCatalog() {
  if (!state.listing.catalog) return;
  try {
    const official = await officialModels();
    const served = new Set();
    state.official = [];
    for (const o of official) {
      for (const kind of o.kinds) {
        if (o.served[kind]) served.add(o.served[kind]);
        else state.official.push({ name: o.name, kind });
      }
    }
  } catch (e) {
    state.official = [];
    showError(`cannot list the official collection: ${e.message}`);
  }
}

async function pick(value) {
  together.interrupt();
  if (value === RANDOM) return pickRandom();
  if (value.startsWith("official:")) {
    const [, name, kind] = value.split(":");
    return fetchAndPick(name, kind);
  }
  selectEntry(state.byName[value]);
}

function selectEntry(entry) {
  state.entry = entry;
  $("#model").value = entry.name;
  applyModel();
  setStatus(`now drawing with ${entry.name}: draw ${article(subject(entry))}`);
  model(); // start loading it now: the visitor draws meanwhile
}

async function pickRandom() {
  const choices = [...state.entries.map((m) => m.name), ...state.official.filter((o) => o.kind === "gen").map((o) => `official:${o.name}:${o.kind}`)];
  const value = choices[Math.floor(Math.random() * choices.length)];
  if (value.startsWith("official:")) await pick(value);
  else selectEntry(state.byName[value]);
  if (state.entry && state.entry.class_conditional) {
    $("#class").value = state.entry.classes[Math.floor(Math.random() * state.entry.classes.length)];
    setStatus(`draw ${article(subject())}`);
  }
}

async function fetchAndPick(name, kind) {
  const what = kind === "vae" ? `${name} (VAE)` : name;
  const pending = { name, kind };
  state.fetching = pending;
  showLoading({ classes: [name], class_conditional: false, name }, `fetching ${what} from the official collection`);
  setBusy(true);
  try {
    const entry = await fetchOfficial(name, kind, (event, data) => {
      if (state.fetching !== pending) return;
      if (event === "progress") {
        const mb = (data.bytes / 1e6).toFixed(1);
        const text = data.total ? `fetching ${what}: ${mb} of ${(data.total / 1e6).toFixed(1)} MB` : `fetching ${what}: ${mb} MB`;
        showLoading({ classes: [name], class_conditional: false, name }, text, data.total ? data.bytes / data.total : null);
      } else if (event === "converting") {
        showLoading({ classes: [name], class_conditional: false, name }, `converting ${what} for your browser (once)`);
      }
    });
    state.official = state.official.filter((o) => !(o.name === name && o.kind === kind));
    state.entries = state.entries.filter((m) => m.name !== entry.name).concat([entry]);
    state.byName[entry.name] = entry;
    fillPicker();
    if (state.fetching === pending) selectEntry(entry);
  } catch (e) {
    hideLoading();
    $("#model").value = state.entry.name;
    showError(fetchFailure(what, e));
  } finally {
    if (state.fetching === pending) state.fetching = null;
    setBusy(false);
  }
}

function fetchFailure(what, e) {
  const why = {
    offline: "the server cannot reach the official collection (no internet?); the models here still work",
    not_found: "the collection says it has no such model (404)",
    forbidden: "the collection refuses to give it (403)",
    not_a_model: "the collection's file is not a sketch-rnn model",
    server_gone: "cannot reach the sketchrnn server (is it still running?)",
  }[e.code];
  return why ? `cannot fetch ${what}: ${why}. (${e.message})` : `cannot fetch ${what}: ${e.message}`;
}

async function start() {
  try {
    state.listing = await openListing();
  } catch (e) {
    showError(e.message);
    return;
  }
  state.entries = state.listing.models;
  state.byName = Object.fromEntries(state.entries.map((m) => [m.name, m]));
  $("#source").textContent = state.listing.static ? "this site" : "this server";
  document.body.dataset.static = String(state.listing.static);
  if (!state.listing.runtime.ready) showError(state.listing.runtime.message);
  await loadCatalog();
  const params = new URLSearchParams(location.search);
  const wanted = params.get("model");
  state.entry = state.byName[wanted] || state.entries.find((m) => m.capabilities.complete) || state.entries[0];
  fillPicker();
  applyModel();
  const firstMode = params.get("mode");
  if (firstMode && MODE_NEEDS[firstMode]) setMode(firstMode);
  document.body.dataset.ready = "true";
  setStatus(`draw ${article(subject())}`);
  model();
}

// ----------------------------------------------------------------------------- wiring

$("#model").addEventListener("change", () => pick($("#model").value));
$("#random").addEventListener("click", () => pickRandom());
$("#class").addEventListener("change", () => {
  together.interrupt();
  setStatus(`now drawing as ${$("#class").value}: draw ${article(subject())}`);
});
$("#error-close").addEventListener("click", hideError);
$("#temperature").addEventListener("input", () => {
  $("#temperature-value").textContent = temperature().toFixed(2);
});
for (const tab of $$("#tabs [role=tab]")) tab.addEventListener("click", () => setMode(tab.dataset.mode));
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "z" && (state.mode === "together" || state.mode === "endings")) {
    e.preventDefault();
    together.undo();
  }
});

// For tests and the curious: the page's state, read-only by convention.
window.sketchApp = { state, main: together.main, ...latent.drawings, ...teach.drawings, toStroke3 };

setMode("together");
start();
