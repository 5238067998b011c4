"""sketchrnn.js against PyTorch, in Node (onnxruntime-node) and in Chromium (onnxruntime-web),
for every model kind: the mixture after each step of a fixed input sequence to 1e-5, greedy
drawings point for point, sampled drawings in distribution, encodings, images and embeddings;
the magenta.js models against @magenta/sketch; hostile files refused."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import probe_rows, random_sketches
from js.jsrun import ALL_MODELS, MAGENTA_MODELS, NODE_MODULES, ROOT, Exported, npm_missing

from sketchrnn import generate, strokes
from sketchrnn.datasets import render_images

pytestmark = pytest.mark.slow

TOLERANCE = 1e-5  # relative where a value is above 1
SAMPLES = 300  # drawings per side in the distribution test
SAMPLE_TEMPERATURE = 0.6
# Drawings at another temperature must fail the distribution check for this trained model.
POWER_CHECK_MODEL = "magenta_sheep"
MIXTURE_FIELDS = ("log_pi", "mu_x", "mu_y", "log_sigma_x", "log_sigma_y", "rho", "pen_logits")


def capabilities(e: Exported) -> list[str]:
    return json.loads((e.folder / "manifest.json").read_text())["capabilities"]


def is_sketch_embed_net(e: Exported) -> bool:
    return type(e.model).__name__ == "SketchEmbedNet"


def latent(e: Exported) -> list[float] | None:
    if not e.model.has_encoder:
        return None
    g = torch.Generator().manual_seed(5)
    return torch.randn(int(e.model.config.z_size), generator=g).tolist()


def label(e: Exported) -> int | None:
    return 1 if e.model.num_classes > 0 else None


def probe(e: Exported) -> np.ndarray:
    """Start token and 30 stroke-5 rows in pixels, a few times the model's scale factor."""
    return probe_rows(seed=7, n=30, spread=2.0 * float(e.model.scale_factor))


def drawings(e: Exported) -> list[np.ndarray]:
    """Three drawings, in pixels of the model's size (prefixes, things to encode)."""
    scale = float(e.model.scale_factor) / 10.0
    out = []
    for s in random_sketches(3, seed=3, lengths=(6, 12)):
        s = s.copy()
        s[:, :2] *= scale
        out.append(s)
    return out


def as_list(a: np.ndarray) -> list[list[float]]:
    return np.asarray(a, dtype=np.float64).tolist()


# ----------------------------------------------------------------------------- jobs


def jobs_for(e: Exported, location: str) -> dict[str, dict[str, Any]]:
    """What each test asks of the model, by key (run together in one process or page)."""
    caps = capabilities(e)
    z, lab = latent(e), label(e)
    cond = {"z": z, "label": lab}
    jobs: dict[str, dict[str, Any]] = {
        "mixtures": {"op": "mixtures", "rows": as_list(probe(e)), "options": cond},
    }
    greedy = {"temperature": 0, "label": lab}
    if z is not None:
        jobs["greedy"] = {"op": "decode", "z": [z], "options": greedy}
    else:
        jobs["greedy"] = {"op": "sample", "n": 1, "options": greedy}
    prefix = as_list(drawings(e)[0])
    if "complete" in caps:
        jobs["complete"] = {"op": "complete", "prefix": prefix, "n": 2, "options": greedy}
        jobs["stream"] = {"op": "stream", "prefix": prefix, "options": greedy}
    if "sample" in caps:
        options = {"temperature": SAMPLE_TEMPERATURE, "seed": 1, "label": lab}
        jobs["samples"] = {"op": "sample", "n": SAMPLES, "options": options}
        if e.name == POWER_CHECK_MODEL:
            hot = {**options, "temperature": 1.5}
            jobs["samples_hot"] = {"op": "sample", "n": SAMPLES, "options": hot}
    if "encode" in caps and not is_sketch_embed_net(e):
        jobs["encode"] = {"op": "encode", "sketches": [as_list(s) for s in drawings(e)]}
    if "interpolate" in caps:
        a, b = (as_list(s) for s in drawings(e)[1:])
        jobs["interpolate"] = {"op": "interpolate", "a": a, "b": b, "steps": 3, "options": greedy}
    if is_sketch_embed_net(e):
        items = [as_list(s) for s in drawings(e)]
        jobs["image"] = {"op": "image", "item": items[0]}
        jobs["embed"] = {"op": "embed", "items": items}
        # The same image given as pixels: grey values, and RGBA bytes (dark ink on white).
        side = int(e.model.config.image_size)
        grey = render_images(drawings(e)[:1], side)[0].astype(np.float64) / 255.0
        rgba = np.repeat(np.round(255 * (1 - grey))[..., None], 4, axis=-1)
        rgba[..., 3] = 255
        image = {"width": side, "height": side}
        jobs["embed_pixels"] = {
            "op": "embed",
            "items": [{**image, "data": grey.ravel().tolist()},
                      {**image, "data": rgba.astype(int).ravel().tolist()}],
        }  # fmt: skip
        jobs["imitate"] = {"op": "imitate", "item": items[0], "n": 1, "options": {"temperature": 0}}
        jobs["imitations"] = {
            "op": "imitate", "item": items[0], "n": SAMPLES,
            "options": {"temperature": SAMPLE_TEMPERATURE, "seed": 1},
        }  # fmt: skip
    for job in jobs.values():
        job["model"] = location
    return jobs


class Results:
    """Each (runtime, model)'s job results, computed once."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, runner: Any, e: Exported) -> dict[str, Any]:
        key = (runner.name, e.name)
        if key not in self.cache:
            jobs = jobs_for(e, runner.location(e.folder))
            out = runner.run(list(jobs.values()))
            self.cache[key] = dict(zip(jobs, out, strict=True))
        return self.cache[key]


@pytest.fixture(scope="session")
def results() -> Results:
    return Results()


@pytest.fixture(params=ALL_MODELS)
def model(request, exported) -> Exported:
    return exported(request.param)


def ok(value: Any) -> Any:
    if isinstance(value, dict) and "error" in value:
        raise AssertionError(f"sketchrnn.js: {value['error']}: {value['message']}")
    return value


# ----------------------------------------------------------------------------- PyTorch


def torch_mixtures(e: Exported) -> dict[str, np.ndarray]:
    """The model's mixture after each probe row, ``decode_step`` by ``decode_step``."""
    model = e.model
    rows = probe(e).astype(np.float32)
    rows[:, :2] /= np.float32(model.scale_factor)
    z = latent(e)
    zt = None if z is None else torch.tensor([z], dtype=torch.float32)
    labels = None if label(e) is None else torch.tensor([label(e)])
    out: dict[str, list] = {k: [] for k in MIXTURE_FIELDS}
    with generate.inference(model):
        state = model.initial_state(zt, 1)
        for row in torch.from_numpy(rows):
            params, state = model.decode_step(row[None], state, z=zt, labels=labels)
            for k in MIXTURE_FIELDS:
                out[k].append(getattr(params, k)[0].double().numpy())
    return {k: np.array(v) for k, v in out.items()}


def assert_close(js: Any, ref: np.ndarray, what: str, tol: float = TOLERANCE) -> None:
    js = np.asarray(js, dtype=np.float64)
    assert js.shape == ref.shape, f"{what}: shape {js.shape} vs {ref.shape}"
    excess = np.abs(js - ref) / np.maximum(1.0, np.abs(ref))
    worst = float(excess.max()) if excess.size else 0.0
    assert worst <= tol, f"{what}: differs by {worst:.3g} (relative above 1) > {tol:g}"


def assert_same_drawing(js: Any, ref: np.ndarray, scale: float, what: str) -> None:
    """Point for point: the same pen states, offsets equal to float32 rounding over the
    sketch (1e-4 of the model's scale)."""
    js = np.asarray(js, dtype=np.float64).reshape(-1, 3)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1, 3)
    assert len(js) == len(ref), f"{what}: {len(js)} points vs PyTorch's {len(ref)}"
    assert np.array_equal(js[:, 2], ref[:, 2]), f"{what}: pen states differ"
    np.testing.assert_allclose(js[:, :2], ref[:, :2], rtol=1e-4, atol=1e-4 * scale, err_msg=what)


def torch_greedy(e: Exported) -> list[np.ndarray]:
    z = latent(e)
    if z is None:
        return generate.decode(e.model, None, 1, temperature=0, labels=label(e))
    return generate.decode(e.model, torch.tensor([z]), temperature=0, labels=label(e))


def torch_image_embedding(e: Exported, sketches: list[np.ndarray]) -> tuple[np.ndarray, Any]:
    """The training images of ``sketches`` (float32 ink) and the model's embeddings."""
    side = int(e.model.config.image_size)
    images = render_images(sketches, side).astype(np.float32) / 255.0
    channels = int(e.model.config.in_channels)
    batch = torch.from_numpy(images)[:, None].expand(-1, channels, -1, -1).contiguous()
    return images, e.model.embed(batch)


def extent(s3: np.ndarray) -> float:
    lo_x, hi_x, lo_y, hi_y = strokes.bounds(s3)
    return max(hi_x - lo_x, hi_y - lo_y)


def scaled_to(s3: np.ndarray, target: float) -> np.ndarray:
    """An imitation brought to the drawing's size, as the server's imitate does (a drawing of
    no extent stays as it is)."""
    side = extent(s3) if len(s3) else 0.0
    if not (side > 0 and target > 0):
        return s3
    out = np.array(s3, dtype=np.float32, copy=True)
    out[:, :2] /= side / target
    return out


# ----------------------------------------------------------------------------- the tests


def test_mixture_after_each_step_matches_pytorch(runner, results, model):
    js = ok(results.get(runner, model)["mixtures"])
    ref = torch_mixtures(model)
    assert len(js) == len(probe(model))
    for k in MIXTURE_FIELDS:
        assert_close([step[k] for step in js], ref[k], f"{model.name} {k}")


def test_greedy_drawing_matches_pytorch_point_for_point(runner, results, model):
    r = results.get(runner, model)
    scale = float(model.model.scale_factor)
    [ref] = torch_greedy(model)
    [js] = ok(r["greedy"])
    assert_same_drawing(js, ref, scale, f"{model.name} greedy")
    if "complete" in r:
        prefix = drawings(model)[0]
        [ref_c] = generate.complete(model.model, prefix, 1, temperature=0, labels=label(model))
        for js_c in ok(r["complete"]):
            assert_same_drawing(js_c, ref_c, scale, f"{model.name} complete")
        # The streamed ending is the completion's ending, row by row.
        assert_same_drawing(ok(r["stream"]), ref_c[len(prefix) :], scale, f"{model.name} stream")
    if "interpolate" in r:
        # generate.interpolate's path (it takes no labels: the class-conditional VAE's path is
        # decoded with its label here, as sketchrnn.js does).
        a, b = drawings(model)[1:]
        if is_sketch_embed_net(model):
            _, (za, zb) = torch_image_embedding(model, [a, b])
        else:
            za, zb = generate.encode(model.model, [a, b])
        path = generate.interpolate_latents(za, zb, 3, "slerp")
        ref_i = generate.decode(model.model, path, temperature=0, labels=label(model))
        for js_i, ref_one in zip(ok(r["interpolate"]), ref_i, strict=True):
            assert_same_drawing(js_i, ref_one, scale, f"{model.name} interpolate")


def stats(sketches: list[Any]) -> dict[str, np.ndarray]:
    """Per drawing: its points, strokes and pen lifts."""
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1, 3) for s in sketches]
    lifts = np.array([float(a[:, 2].sum()) for a in arrays])
    open_end = np.array([float(len(a) > 0 and a[-1, 2] == 0) for a in arrays])
    return {
        "points": np.array([float(len(a)) for a in arrays]),
        "strokes": lifts + open_end,
        "pen lifts": lifts,
    }


def same_distribution(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    """The statistics whose means differ by more than 4.5 standard errors (Welch): a pass
    says each mean lies in the other's 99.999% confidence interval. Returns what differs."""
    differ = []
    for k in a:
        se = math.sqrt(a[k].var(ddof=1) / len(a[k]) + b[k].var(ddof=1) / len(b[k]))
        gap = abs(a[k].mean() - b[k].mean())
        if (se == 0 and gap > 0) or (se > 0 and gap / se > 4.5):
            differ.append(f"{k}: {a[k].mean():.2f} vs {b[k].mean():.2f} (se {se:.2f})")
    return differ


def test_sampled_drawings_match_in_distribution(runner, results, model):
    r = results.get(runner, model)
    if "samples" in r:
        js = ok(r["samples"])
        ref = generate.sample(
            model.model, SAMPLES, temperature=SAMPLE_TEMPERATURE, labels=label(model), seed=1
        )
        hot = ok(r["samples_hot"]) if "samples_hot" in r else None
    elif "imitations" in r:
        js = ok(r["imitations"])
        prefix = drawings(model)[0]
        _, z = torch_image_embedding(model, [prefix])
        ref = generate.decode(
            model.model, z.expand(SAMPLES, -1), temperature=SAMPLE_TEMPERATURE, seed=1
        )
        ref = [scaled_to(s, extent(prefix)) for s in ref]
        hot = None
    else:
        pytest.skip(f"{model.name} neither samples nor imitates")
    assert len(js) == len(ref) == SAMPLES
    differ = same_distribution(stats(js), stats(ref))
    assert differ == [], f"{model.name}: {differ}"
    max_len = int(model.model.config.max_seq_len)
    assert all(len(s) <= max_len for s in js)
    # The check has power: the sheep's drawings at another temperature do not pass it.
    if hot is not None:
        assert same_distribution(stats(hot), stats(ref)) != []


def test_encodings_images_and_embeddings_match_pytorch(runner, results, model):
    r = results.get(runner, model)
    if "encode" in r:
        mu, sigma_hat = generate.encode(model.model, drawings(model), with_sigma=True)
        js = ok(r["encode"])
        assert_close(js["mu"], mu.double().numpy(), f"{model.name} mu")
        assert_close(js["sigmaHat"], sigma_hat.double().numpy(), f"{model.name} sigma_hat")
    elif "embed" in r:
        images, mu = torch_image_embedding(model, drawings(model))
        # The same training image, pixel for pixel (the rasteriser's float32 arithmetic).
        assert np.array_equal(np.array(ok(r["image"]), dtype=np.float32), images[0].ravel())
        assert_close(ok(r["embed"]), mu.double().numpy(), f"{model.name} embedding")
        from_pixels = ok(r["embed_pixels"])
        assert_close(from_pixels[0], mu[0].double().numpy(), f"{model.name} grey image")
        assert_close(from_pixels[1], mu[0].double().numpy(), f"{model.name} RGBA image", 1e-4)
        # Imitation: the image's embedding decoded, scaled to the drawing's size.
        prefix = drawings(model)[0]
        [ref] = generate.decode(model.model, mu[:1], temperature=0)
        ref = scaled_to(ref, extent(prefix))
        [js] = ok(r["imitate"])
        assert_same_drawing(js, ref, float(model.model.scale_factor), f"{model.name} imitate")
    else:
        pytest.skip(f"{model.name} has no encoder")


def test_units_match_python(runner):
    sketch = [[10.0, -3.3, 0.0], [0.1, 7.0, 1.0], [-123.456, 1e-3, 1.0]]
    [result] = runner.run([{"op": "units", "sketch": sketch, "factor": 29.833362036700603}])
    s3 = np.array(sketch, dtype=np.float32)
    units = strokes.normalize([s3], 29.833362036700603)[0]
    assert np.array_equal(np.array(result["units"], dtype=np.float32), units)
    pixels = units.copy()
    pixels[:, :2] *= 29.833362036700603
    from sketchrnn.models.units import to_pixels

    class Units:
        scale_factor = 29.833362036700603

    back = to_pixels(Units(), [s3])[0]  # type: ignore[arg-type]
    assert np.array_equal(np.array(result["pixels"], dtype=np.float32), back)


# ----------------------------------------------------------------------------- magenta.js


MAGENTA_SCRIPT = ROOT / "tests" / "node" / "magenta_pdf.js"
PDF_FIELDS = ("pi", "mu_x", "mu_y", "sigma_x", "sigma_y", "rho", "pen")


@pytest.mark.parametrize("name", MAGENTA_MODELS)
def test_magenta_models_give_the_pdfs_of_magenta_sketch(runner, exported, tmp_path, name):
    missing = npm_missing("@magenta/sketch")
    if missing:
        pytest.skip(missing)
    e = exported(name)
    rows = probe(e)
    rows_path = tmp_path / "rows.json"
    rows_path.write_text(json.dumps(rows.tolist()))
    done = subprocess.run(
        ["node", str(MAGENTA_SCRIPT), "pdf", str(e.source), str(rows_path)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith('{"steps"'))
    magenta = json.loads(line)["steps"]
    [ours] = runner.run([{"op": "pdf", "rows": rows.tolist(), "model": runner.location(e.folder)}])
    ours = ok(ours)
    assert len(ours) == len(magenta) == len(rows)
    for k in PDF_FIELDS:
        a = np.array([s[k] for s in ours])
        b = np.array([s[k] for s in magenta])
        # tfjs computes in float32 too; its sigmas (some ~1e-7) compared relative to size.
        np.testing.assert_allclose(a, b, rtol=1e-3 if k.startswith("sigma") else 0, atol=1e-4,
                                   err_msg=f"{name} {k}")  # fmt: skip


# ----------------------------------------------------------------------------- hostile files


def spoiled_copies(e: Exported, root: Path) -> dict[str, tuple[Path, str]]:
    """Copies of an exported folder, each spoilt one way, and the error each must give."""
    manifest = json.loads((e.folder / "manifest.json").read_text())
    out: dict[str, tuple[Path, str]] = {}

    def copy(name: str, message: str) -> Path:
        folder = root / f"{e.name}-{name}"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(e.folder, folder)
        out[name] = (folder, message)
        return folder

    def edit(folder: Path, change: Any) -> None:
        m = json.loads(json.dumps(manifest))
        change(m)
        (folder / "manifest.json").write_text(json.dumps(m))

    step = manifest["graphs"]["step"]
    f = copy(
        "truncated", rf"step.onnx: {step['bytes'] // 2} bytes, the manifest says {step['bytes']}"
    )
    (f / "step.onnx").write_bytes((e.folder / "step.onnx").read_bytes()[: step["bytes"] // 2])
    f = copy("altered", r"step.onnx: SHA-256 [0-9a-f]{64} differs from the manifest's")
    data = bytearray((e.folder / "step.onnx").read_bytes())
    data[len(data) // 2] ^= 0x40
    (f / "step.onnx").write_bytes(bytes(data))
    f = copy("newer", r"manifest.json: format_version 2 is newer than this sketchrnn.js reads")
    edit(f, lambda m: m.update(format_version=2))
    f = copy("not-json", r"manifest.json: not valid JSON")
    (f / "manifest.json").write_text('{"format": "sketchrnn-portable", ')
    f = copy("missing-field", r'manifest.json: missing field "num_mixtures"')
    edit(f, lambda m: m.pop("num_mixtures"))
    f = copy("missing-graph", r"(step.onnx: cannot read|step.onnx: HTTP 404)")
    (f / "step.onnx").unlink()
    # A graph that is not the one the manifest describes (init's bytes, with their digest).
    f = copy("swapped", r"step.onnx: the graph's inputs are \[z\], the manifest says \[x, ")
    init = (e.folder / "init.onnx").read_bytes()
    (f / "step.onnx").write_bytes(init)

    def swap(m: dict) -> None:
        m["graphs"]["step"]["bytes"] = len(init)
        m["graphs"]["step"]["sha256"] = manifest["graphs"]["init"]["sha256"]

    edit(f, swap)
    f = copy("garbage", r"step.onnx: not a graph ONNX Runtime can open")
    junk = bytes(range(256)) * 40
    (f / "step.onnx").write_bytes(junk)
    edit(
        f,
        lambda m: m["graphs"]["step"].update(
            bytes=len(junk), sha256=hashlib.sha256(junk).hexdigest()
        ),
    )
    f = copy("renamed-input", r"graphs.step.inputs are \[xx, ")
    edit(f, lambda m: m["graphs"]["step"]["inputs"][0].update(name="xx"))
    return out


def test_hostile_files_are_refused_with_the_file_named(runner, exported):
    e = exported("vae_lstm")
    copies = spoiled_copies(e, exported.root)
    jobs = [{"op": "load", "model": runner.location(folder)} for folder, _ in copies.values()]
    for (what, (_, message)), result in zip(copies.items(), runner.run(jobs), strict=True):
        assert result.get("error") == "ModelFileError", f"{what}: {result}"
        assert re.search(message, result["message"]), f"{what}: {result['message']}"


# ----------------------------------------------------------------------------- float16


def test_float16_storage_reads_back_as_onnxruntime_in_python_reads_it(runner, exported):
    """A model stored as float16 (``sketchrnn export --float16``) computes in float32: the JS
    runtimes read it back as onnxruntime does in Python, to 1e-5 (and near PyTorch's float32
    model, by the rounding of the weights)."""
    from sketchrnn.models.portable import PortableModel

    e = exported("vae_layernorm_classes@float16")
    assert json.loads((e.folder / "manifest.json").read_text())["dtype"] == "float16"
    [js] = runner.run([{**jobs_for(e, runner.location(e.folder))["mixtures"]}])
    js = ok(js)
    portable = PortableModel(e.folder)
    rows = probe(e).astype(np.float32)
    rows[:, :2] /= np.float32(e.model.scale_factor)
    z = np.array([latent(e)], dtype=np.float32)
    lab = np.array([label(e)])
    state = portable.initial_state(z, 1)
    for t, row in enumerate(rows):
        mixture, state = portable.step(row[None], state, z, lab)
        for k in MIXTURE_FIELDS:
            assert_close(js[t][k], getattr(mixture, k)[0].astype(np.float64), f"float16 {k}")
    ref = torch_mixtures(e)
    for k in MIXTURE_FIELDS:
        assert_close([step[k] for step in js], ref[k], f"float16 vs float32 {k}", tol=1e-2)
