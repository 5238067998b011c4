// Mimic and Morph: a VAE's latent space, in the browser. Mimic reads a drawing into its latent
// mean and decodes it again (as sketchrnn.generate.reconstruct), also with a second model or
// class, or at five temperatures side by side (the temperature strip). Morph walks from A to
// B (generate.interpolate) or across the four-corner grid (generate.four_corner_grid).
// A decoded drawing that comes out empty (the model ended it at its first step) is said so
// in its cell; a sampled slot draws again a few times before it says so.

import { interpolateLatents } from "./sketchrnn.js";
import { Pad, exportButtons, fill, resultCell, resultRow } from "./pad.js";
import { centred } from "./sketches.js";
import { STRIP_TEMPERATURES } from "./together.js";

const EMPTY_NOTE = "empty: the model ended this drawing at its first step";

export function setupLatent(page) {
  const { $, $$, messages } = page;
  const mimic = { strokes: [] };
  const slots = {};

  /** The cells of decoded drawings (model pixels: each cell fits its drawing). */
  function cells(sketches, k, names, titles = []) {
    return sketches.map((rows, i) => resultCell(page.fromModel(rows, k), messages, {
      name: names(i),
      title: titles[i] || "",
      note: rows.length ? "" : EMPTY_NOTE,
    }));
  }

  function emptyNote(sketches) {
    const empty = sketches.filter((s) => s.length === 0).length;
    return empty ? ` (${empty} came out empty: the model ended ${empty === 1 ? "it" : "them"} at once; try a higher temperature)` : "";
  }

  // ---------------------------------------------------------------------------- Mimic

  async function runMimic({ strip = false } = {}) {
    if (!page.can("reconstruct")) return;
    if (!mimic.strokes.length) return messages.showError("draw a whole sketch first");
    const n = page.clampInt($("#mimic-n"), 1, 64);
    const size = padMimic.size();
    const entries = [page.state.entry];
    const other = page.state.byName[$("#mimic-other").value];
    if (!strip && other && other !== page.state.entry) entries.push(other);
    const out = await messages.run(strip ? "one latent at five temperatures" : "redrawing", async () => {
      const rows = [];
      for (const [index, entry] of entries.entries()) {
        const model = await page.modelOf(entry);
        if (!model) return null;
        const label = index === 0 ? page.label() : entry.class_conditional ? $("#mimic-other-class").value : undefined;
        const input = page.toModel(mimic.strokes, size, { maxPoints: model.maxLen, what: "the model encodes", entry });
        const [mu] = await model.encode([input.rows]);
        const seed = page.newSeed();
        let sketches;
        if (strip) {
          sketches = [];
          for (const tau of STRIP_TEMPERATURES) sketches.push(...(await model.decode([mu], { temperature: tau, label, seed })));
        } else {
          sketches = await model.decode(Array(n).fill(mu), { temperature: page.temperature(), label, seed });
        }
        rows.push({ entry, label, sketches, k: input.k });
      }
      return rows;
    });
    if (!out) return;
    const rows = out.map(({ entry, label, sketches, k }) => {
      const title = `${entry.name}${entry.class_conditional ? ` (${label})` : ""}${strip ? ": one latent at five temperatures" : ""}`;
      const titles = strip ? STRIP_TEMPERATURES.map((t) => `τ ${t}`) : [];
      const list = cells(sketches, k, (i) => `${entry.name}-mimic-${i + 1}`, titles);
      return resultRow(title, list, strip ? STRIP_TEMPERATURES.length : Math.min(list.length, 4));
    });
    $("#mimic-results").replaceChildren(...rows);
    $("#mimic-results").dataset.kind = strip ? "strip" : "redrawings";
    messages.setStatus(`the model's redrawings${emptyNote(out.flatMap((r) => r.sketches))}`);
  }

  function applyModel() {
    const m = page.state.entry;
    const others = page.state.entries.filter((o) => o.capabilities.reconstruct && o.name !== m.name);
    const select = $("#mimic-other");
    const keep = select.value;
    select.replaceChildren(new Option("(none)", ""), ...others.map((o) => new Option(o.name, o.name)));
    if (others.some((o) => o.name === keep)) select.value = keep;
    applyOtherClass();
  }

  function applyOtherClass() {
    const other = page.state.byName[$("#mimic-other").value];
    const select = $("#mimic-other-class");
    select.hidden = !(other && other.class_conditional);
    if (other && other.class_conditional) select.replaceChildren(...other.classes.map((c) => new Option(c, c)));
  }

  // ---------------------------------------------------------------------------- Morph

  async function sampleSlot(name) {
    if (!page.can("sample")) return;
    const slot = slots[name];
    const entry = page.state.entry;
    const tries = page.emptyRetries() + 1;
    const rows = await messages.run(`sampling ${name}`, async () => {
      const model = await page.model();
      if (!model) return null;
      for (let attempt = 0; attempt < tries; attempt++) {
        const [s] = await model.sample(1, { temperature: page.temperature(), label: page.label(), seed: page.newSeed() });
        if (s.length) return s;
      }
      return [];
    });
    if (!rows) return;
    if (!rows.length) {
      messages.setStatus(`${entry.name} ended its drawing at once ${tries} times: sample again or raise the temperature`);
      return;
    }
    const size = slot.pad.size();
    slot.drawing.strokes = centred(page.fromModel(rows, page.scaleFor(size)), size);
    slot.pad.render();
    messages.setStatus(`${name}: a drawing of ${entry.name}'s`);
  }

  async function latents(model, names) {
    const missing = names.filter((n) => !slots[n].drawing.strokes.length);
    if (missing.length) throw new Error(`draw (or sample) ${missing.join(" and ")} first`);
    const inputs = names.map((n) => page.toModel(slots[n].drawing.strokes, slots[n].pad.size(), { maxPoints: model.maxLen, what: "the model encodes" }));
    return { mus: await model.encode(inputs.map((i) => i.rows)), k: inputs[0].k };
  }

  async function runMorph() {
    if (!page.can("interpolate")) return;
    const steps = page.clampInt($("#morph-steps"), 2, 64);
    const out = await messages.run("morphing", async () => {
      const model = await page.model();
      if (!model) return null;
      const { mus, k } = await latents(model, ["A", "B"]);
      const path = interpolateLatents(mus[0], mus[1], steps, "slerp");
      return { k, sketches: await model.decode(path, { temperature: page.temperature(), label: page.label(), seed: page.newSeed() }) };
    });
    if (!out) return;
    const list = cells(out.sketches, out.k, (i) => `morph-${i + 1}`, out.sketches.map((_, i) => `${i + 1}`));
    $("#morph-results").replaceChildren(resultRow(`A → B in ${steps} steps`, list, Math.min(steps, 8)));
    messages.setStatus(`the latent path from A to B${emptyNote(out.sketches)}`);
  }

  async function runGrid() {
    if (!page.can("interpolate")) return;
    const size = page.clampInt($("#grid-size"), 2, 8);
    const out = await messages.run("the four-corner grid", async () => {
      const model = await page.model();
      if (!model) return null;
      const { mus, k } = await latents(model, ["A", "B", "C", "D"]);
      const [tl, tr, bl, br] = mus;
      const left = interpolateLatents(tl, bl, size, "slerp");
      const right = interpolateLatents(tr, br, size, "slerp");
      const grid = left.flatMap((l, r) => interpolateLatents(l, right[r], size, "slerp"));
      return { k, sketches: await model.decode(grid, { temperature: page.temperature(), label: page.label(), seed: page.newSeed() }) };
    });
    if (!out) return;
    const list = cells(out.sketches, out.k, (i) => `grid-${i + 1}`);
    $("#morph-results").replaceChildren(resultRow(`four-corner grid, ${size} x ${size}`, list, size, { exact: true }));
    messages.setStatus(`A and B on top, C and D below${emptyNote(out.sketches)}`);
  }

  // ---------------------------------------------------------------------------- wiring

  const padMimic = new Pad($("#pad-mimic"), mimic);
  for (const slot of $$(".slot")) {
    const name = slot.dataset.slot;
    const drawing = { strokes: [] };
    const pad = new Pad($("canvas", slot), drawing);
    slots[name] = { drawing, pad };
    $(".sample", slot).addEventListener("click", () => sampleSlot(name));
    $(".clear", slot).addEventListener("click", () => {
      drawing.strokes = [];
      pad.render();
    });
  }
  $('.exports[data-of="mimic"]').appendChild(exportButtons(() => mimic.strokes, () => "mimic", messages));
  $("#mimic-go").addEventListener("click", () => runMimic());
  $("#mimic-strip").addEventListener("click", () => runMimic({ strip: true }));
  $("#mimic-clear").addEventListener("click", () => {
    mimic.strokes = [];
    padMimic.render();
    $("#mimic-results").replaceChildren();
  });
  $("#mimic-other").addEventListener("change", applyOtherClass);
  $("#morph-go").addEventListener("click", runMorph);
  $("#grid-go").addEventListener("click", runGrid);

  return {
    applyModel,
    render() {
      padMimic.render();
      Object.values(slots).forEach((s) => s.pad.render());
    },
    drawings: { mimic, slots },
  };
}
