// Where the page's models come from, and loading one into the browser.
//
// The page works in two places and finds out which by asking: served by `sketchrnn serve`,
// `api/models` lists the served models (and `api/catalog` the official collection, which
// `api/fetch` brings into the server's cache, converted for the browser); as a static site
// (`sketchrnn export-site`), there is no API and `models.json` lists the models the site
// holds. Either listing gives, for each model, its info, the folder of its portable form
// (`portable`, relative to the page) and the size of its typical drawing (`typical_extent`).
// The page never asks the server to draw: the models run here, with sketchrnn.js.

import { SketchModel } from "./sketchrnn.js";

export class PageError extends Error {
  constructor(message, code = "") {
    super(message);
    this.code = code;
  }
}

async function errorOf(res) {
  let data = null;
  try {
    data = await res.json();
  } catch (_) { /* not JSON */ }
  const err = data && data.error;
  return new PageError(err ? err.message : `the server answered ${res.status}`, err ? err.code : String(res.status));
}

async function getJson(url) {
  const res = await fetch(url, { cache: "no-cache" });
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

/** The listing: {models, catalog, runtime, page, limits, static}. */
export async function openListing() {
  try {
    const listing = await getJson("api/models");
    return { ...listing, static: false };
  } catch (_) {
    // no API here: a static site (or a server that has gone: models.json says which)
  }
  let listing;
  try {
    listing = await getJson("models.json");
  } catch (e) {
    throw new PageError("cannot list the models: neither a sketchrnn server (api/models) nor a static site (models.json) answered", "offline");
  }
  return { ...listing, catalog: false, static: true };
}

/** The official collection as the server offers it: [{name, kinds, cached, served}]. */
export async function officialModels() {
  const data = await getJson("api/catalog");
  return data.official;
}

/**
 * Fetch official model `name` of `kind` through the server (into its cache, converted for
 * the browser). `onEvent(name, data)` for each progress report; resolves to the served
 * model's listing entry.
 */
export async function fetchOfficial(name, kind, onEvent) {
  let res;
  try {
    res = await fetch("api/fetch", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ name, kind }),
    });
  } catch (_) {
    throw new PageError("cannot reach the server (is sketchrnn serve still running?)", "server_gone");
  }
  if (!res.ok) throw await errorOf(res);
  let done = null;
  await readEvents(res, (event, data) => {
    if (event === "error") throw new PageError(data.error.message, data.error.code);
    if (event === "done") done = data;
    onEvent(event, data);
  });
  if (!done) throw new PageError(`fetching ${name} stopped before the end (the server went away?)`, "server_gone");
  return done.info;
}

async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
  }
}

/** A fetch that reports the bytes of every body as they arrive: onBytes(received). */
function countingFetch(onBytes) {
  let received = 0;
  return async (url, init) => {
    const res = await fetch(url, init);
    if (!res.ok || !res.body) return res;
    const reader = res.body.getReader();
    const chunks = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      onBytes(received);
    }
    return new Response(new Blob(chunks), { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

const loaded = new Map(); // portable URL -> Promise<SketchModel>

/**
 * The model of listing `entry`, loaded once per page (its graphs checked by sketchrnn.js).
 * `onBytes(received)` while its files arrive.
 */
export function loadModel(entry, onBytes = () => {}) {
  if (!entry.portable) {
    return Promise.reject(new PageError(entry.portable_error || `${entry.name} has no form the browser can run`, "no_portable_form"));
  }
  let promise = loaded.get(entry.portable);
  if (!promise) {
    // ONNX Runtime's warnings about the graphs (unused initialisers) are not the page's:
    // errors only on the console.
    const sessionOptions = { logSeverityLevel: 3 };
    promise = SketchModel.load(entry.portable, { fetch: countingFetch(onBytes), sessionOptions });
    loaded.set(entry.portable, promise);
    promise.catch(() => loaded.delete(entry.portable)); // a failed load may be retried
  }
  return promise;
}

export function isLoaded(entry) {
  return Boolean(entry.portable && loaded.has(entry.portable));
}
