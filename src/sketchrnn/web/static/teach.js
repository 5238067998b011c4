// Imitate and teach by example, in the browser. Imitate: a SketchEmbedNet sees only the
// picture of a drawing (sketchrnn.js renders it as the training images were) and draws it
// (sketchrnn.generate.imitate). Teach by example: the model's embeddings of one drawing per
// concept (a SketchEmbedNet's, or a VAE's latent means) and a logistic regression on them, as
// sketchrnn.fewshot scores few-shot episodes (fewshot.js).

import { Pad, exportButtons, fill, resultCell } from "./pad.js";
import { toStroke3 } from "./sketches.js";
import { fitLogistic, l2Normalise } from "./fewshot.js";

const MAX_CONCEPTS = 5;
const MIN_CONCEPTS = 2;

export function setupTeach(page) {
  const { $, messages } = page;
  const imitateDrawing = { strokes: [] };
  const query = { strokes: [] };
  const concepts = [];

  async function runImitate() {
    if (!page.can("imitate")) return;
    if (!imitateDrawing.strokes.length) return messages.showError("draw something first");
    const n = page.clampInt($("#imitate-n"), 1, 64);
    const sketches = await messages.run("imitating", async () => {
      const model = await page.model();
      if (!model) return null;
      return model.imitate(toStroke3(imitateDrawing.strokes), n, { temperature: page.temperature(), seed: page.newSeed() });
    });
    if (!sketches) return;
    const cells = sketches.map((rows, i) => resultCell(page.fromModel(rows, 1), messages, {
      name: `imitation-${i + 1}`,
      note: rows.length ? "" : "empty: the model ended this drawing at its first step",
    }));
    fill($("#imitate-results"), cells, Math.min(cells.length, 4));
    const empty = sketches.filter((s) => !s.length).length;
    messages.setStatus(empty ? `the model's drawings of your picture (${empty} came out empty: it ended them at once)` : "the model's drawings of your picture");
  }

  function addConcept() {
    if (concepts.length >= MAX_CONCEPTS) return;
    const index = concepts.length + 1;
    const box = document.createElement("div");
    box.className = "concept";
    const name = document.createElement("input");
    name.type = "text";
    name.value = `thing ${index}`;
    name.setAttribute("aria-label", `name of concept ${index}`);
    const canvas = document.createElement("canvas");
    canvas.className = "pad small";
    canvas.setAttribute("aria-label", `example of concept ${index}`);
    canvas.id = `pad-concept-${index}`;
    const clear = document.createElement("button");
    clear.textContent = "Clear";
    const drawing = { strokes: [] };
    box.append(name, canvas, clear);
    $("#concepts").appendChild(box);
    const pad = new Pad(canvas, drawing);
    clear.addEventListener("click", () => {
      drawing.strokes = [];
      pad.render();
    });
    concepts.push({ name, drawing, pad, box });
  }

  function removeConcept() {
    if (concepts.length <= MIN_CONCEPTS) return;
    concepts.pop().box.remove();
  }

  let classifyToken = 0;

  async function runClassify() {
    if (!page.can("classify")) return;
    const taught = concepts.filter((c) => c.drawing.strokes.length);
    if (taught.length < MIN_CONCEPTS) return messages.showError("draw an example of at least two concepts first");
    if (!query.strokes.length) return messages.showError("draw a query to classify");
    const names = taught.map((c) => c.name.value.trim() || "?");
    if (new Set(names).size !== names.length) return messages.showError("give each concept its own name");
    const token = ++classifyToken;
    const probabilities = await messages.run("classifying", async () => {
      const model = await page.model();
      if (!model) return null;
      const drawings = [...taught.map((c) => c.drawing), query];
      const pads = [...taught.map((c) => c.pad), padQuery];
      // A VAE reads each drawing as it reads drawings to continue (its pad mapped to the
      // model); a SketchEmbedNet sees its picture, which is fitted whatever its size.
      const items = drawings.map((d, i) => (model.kind === "sketchembednet"
        ? toStroke3(d.strokes)
        : page.toModel(d.strokes, pads[i].size(), { maxPoints: model.maxLen, what: "the model encodes" }).rows));
      const vectors = l2Normalise((await model.embed(items)).map((v) => Array.from(v)));
      const classifier = fitLogistic(vectors.slice(0, taught.length), taught.map((_, i) => i), { C: page.regularization() });
      return classifier.predict([vectors[taught.length]])[0];
    });
    if (!probabilities || token !== classifyToken) return;
    const ranked = names.map((n, i) => [n, probabilities[i]]).sort((a, b) => b[1] - a[1]);
    const out = $("#teach-result");
    out.replaceChildren();
    const line = document.createElement("p");
    line.className = "verdict";
    line.append("It looks like ");
    const b = document.createElement("strong");
    b.textContent = ranked[0][0];
    line.append(b, ` (${Math.round(ranked[0][1] * 100)}% sure)`);
    out.appendChild(line);
    for (const [name, p] of ranked) {
      const row = document.createElement("div");
      row.className = "bar-row";
      const label = document.createElement("span");
      label.textContent = name;
      const bar = document.createElement("span");
      bar.className = "bar";
      const inner = document.createElement("span");
      inner.style.width = `${Math.round(p * 100)}%`;
      bar.appendChild(inner);
      const pct = document.createElement("span");
      pct.textContent = `${Math.round(p * 100)}%`;
      row.append(label, bar, pct);
      out.appendChild(row);
    }
    out.dataset.label = ranked[0][0];
    messages.setStatus(`classified as ${ranked[0][0]}`);
  }

  // ---------------------------------------------------------------------------- wiring

  const padImitate = new Pad($("#pad-imitate"), imitateDrawing);
  const padQuery = new Pad($("#pad-query"), query, {
    onEnd: () => {
      if ($("#classify-auto").checked) runClassify();
    },
  });
  addConcept();
  addConcept();
  $('.exports[data-of="imitate"]').appendChild(exportButtons(() => imitateDrawing.strokes, () => "imitate", messages));
  $("#imitate-go").addEventListener("click", runImitate);
  $("#imitate-clear").addEventListener("click", () => {
    imitateDrawing.strokes = [];
    padImitate.render();
    $("#imitate-results").replaceChildren();
  });
  $("#concept-add").addEventListener("click", addConcept);
  $("#concept-remove").addEventListener("click", removeConcept);
  $("#classify-go").addEventListener("click", runClassify);
  $("#query-clear").addEventListener("click", () => {
    query.strokes = [];
    padQuery.render();
    $("#teach-result").replaceChildren();
  });

  return {
    render() {
      padImitate.render();
      padQuery.render();
      concepts.forEach((c) => c.pad.render());
    },
    drawings: { imitate: imitateDrawing, query, concepts },
  };
}
