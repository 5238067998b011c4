"""Portable models: the reader's checks (a truncated or altered graph, an altered manifest, a
newer format, graphs that do not match the manifest), ``sketchrnn export``'s refusals (a model
it cannot export, an OUT that exists or cannot be written, a scale factor out of range) with
nothing left behind, float16 storage, and the export leaving the model as it was. Every kind's
exactness is in test_portable_kinds.py."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchrnn.cli import main
from sketchrnn.extras import MissingExtraError
from sketchrnn.models import ConvVAE, ConvVAEConfig, SketchRNN, SketchRNNConfig
from sketchrnn.models.onnx_export import (
    FLOAT16_TOLERANCE,
    ExportError,
    export_portable,
    measure_difference,
)
from sketchrnn.models.onnx_graphs import OPSET
from sketchrnn.models.portable import PortableModel
from sketchrnn.models.portable_format import (
    FORMAT_VERSION,
    MIXTURE_OUTPUTS,
    PortableModelError,
    file_digest,
    read_manifest,
    require_onnx,
)
from sketchrnn.nn import cells
from sketchrnn.nn.mixture import MixtureParams


def tiny_vae(cell: str = "lstm", **overrides) -> SketchRNN:
    torch.manual_seed(0)
    values = dict(enc_hidden=8, dec_hidden=16, z_size=4, num_mixtures=3, cell=cell)
    model = SketchRNN(SketchRNNConfig.preset("small", **{**values, **overrides}))
    model.set_units(scale_factor=20.0, classes=["thing"])
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """One exported VAE, copied by each test that damages it (:func:`copy_of`)."""
    folder = tmp_path_factory.mktemp("portable") / "vae"
    export_portable(tiny_vae(), folder)
    return folder


@pytest.fixture()
def copy_of(exported, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(exported, target)
    return target


def edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def refused(folder: Path, *words: str) -> str:
    """The one-line PortableModelError ``PortableModel(folder)`` raises, holding ``words``."""
    with pytest.raises(PortableModelError) as caught:
        PortableModel(folder)
    text = str(caught.value)
    assert "\n" not in text and all(w in text for w in words), text
    return text


# ----------------------------------------------------------------------------- the folder


def test_manifest_describes_the_model(exported):
    m = read_manifest(exported)
    assert (m.kind, m.name, m.latent_size, m.num_classes, m.num_mixtures) == (
        "sketch-rnn", "thing", 4, 0, 3,
    )  # fmt: skip
    assert m.state == (("h", 16), ("c", 16)) and m.max_len == 250
    assert m.scale_factor == 20.0 and m.classes == ["thing"] and m.dtype == "float32"
    assert m.extra == {"opset": OPSET} and m.format_version == FORMAT_VERSION
    assert set(m.capabilities) == {"sample", "complete", "encode", "decode", "interpolate", "embed"}
    assert set(m.graphs) == {"encode", "init", "step", "read"}
    step = m.graphs["step"]
    assert [t.name for t in step.inputs] == ["x", "h", "c", "z"]
    assert [t.name for t in step.outputs] == [*MIXTURE_OUTPUTS, "next_h", "next_c"]
    assert MIXTURE_OUTPUTS == MixtureParams._fields
    for name, spec in m.graphs.items():
        data = (exported / spec.file).read_bytes()
        assert (spec.bytes, spec.sha256) == (len(data), file_digest(data)), name
        assert b"/work/" not in data and b"stack_trace" not in data  # no debugging metadata
    assert sorted(p.name for p in exported.iterdir()) == [
        "encode.onnx", "init.onnx", "manifest.json", "read.onnx", "step.onnx",
    ]  # fmt: skip


def test_portable_model_draws_like_the_model(exported):
    """A quick end-to-end check (the thorough ones are in test_portable_kinds.py)."""
    assert measure_difference(tiny_vae(), PortableModel(exported), batch=3, steps=20) <= 1e-5


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = tiny_vae()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cells.set_loop_compiler("fused")
    export_portable(model, tmp_path / "m", with_read=False)
    assert model.training and all(model.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert cells._loop_compiler == "fused"
    assert "read" not in read_manifest(tmp_path / "m").graphs


# ----------------------------------------------------------------------------- the reader


def test_truncated_graph(copy_of):
    data = (copy_of / "step.onnx").read_bytes()
    (copy_of / "step.onnx").write_bytes(data[: len(data) // 2])
    refused(copy_of, "step.onnx", "bytes", "truncated")


def test_altered_graph(copy_of):
    path = copy_of / "init.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of a weight, the size unchanged
    path.write_bytes(bytes(data))
    refused(copy_of, "init.onnx", "SHA-256")


def test_missing_graph(copy_of):
    (copy_of / "encode.onnx").unlink()
    refused(copy_of, "encode.onnx", "missing")


def test_graph_that_is_not_onnx(copy_of):
    """Garbage whose size and digest the manifest was made to agree with."""
    garbage = b"not an onnx graph" * 10
    (copy_of / "step.onnx").write_bytes(garbage)
    edit_manifest(copy_of, lambda d: d["graphs"]["step"].update(
        bytes=len(garbage), sha256=file_digest(garbage)))  # fmt: skip
    refused(copy_of, "step.onnx", "not a graph onnxruntime can run")


def test_graph_that_does_not_match_the_manifest(copy_of):
    """init.onnx put in step.onnx's place, the manifest's size and digest updated: the graph's
    own inputs and outputs give it away."""
    data = (copy_of / "init.onnx").read_bytes()
    (copy_of / "step.onnx").write_bytes(data)
    edit_manifest(copy_of, lambda d: d["graphs"]["step"].update(
        bytes=len(data), sha256=file_digest(data)))  # fmt: skip
    refused(copy_of, "step.onnx", "differ from the manifest")


def test_manifest_lists_that_do_not_fit_the_model(copy_of):
    """Lists edited to agree with nothing: refused before any graph is read."""
    edit_manifest(copy_of, lambda d: d["graphs"]["step"]["inputs"][0].update(name="y"))
    refused(copy_of, "manifest.json", "graphs.step.inputs")
    edit_manifest(copy_of, lambda d: d["graphs"]["step"]["inputs"][0].update(name="x"))
    edit_manifest(copy_of, lambda d: d.update(num_mixtures=4))  # the graphs give 3
    refused(copy_of, "manifest.json", "graphs.step.outputs")


def test_manifest_without_a_graph_the_model_needs(copy_of):
    edit_manifest(copy_of, lambda d: d["graphs"].pop("init"))
    refused(copy_of, "manifest.json", "lacks init")


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), ("newer", "upgrade sketchrnn")),
        (lambda d: d.update(format="onnx-model"), ("format is 'onnx-model'",)),
        (lambda d: d.pop("state"), ("field state is missing",)),
        (lambda d: d.update(num_mixtures="3"), ("field num_mixtures must be an integer",)),
        (lambda d: d.update(latent_size=True), ("field latent_size must be an integer",)),
        (lambda d: d["units"].update(scale_factor=-1), ("units.scale_factor", "> 0")),
        (lambda d: d.update(dtype="int8"), ("field dtype",)),
        (lambda d: d.update(kind="gan"), ("field kind",)),
        (lambda d: d["graphs"]["step"].update(sha256="x"), ("graphs.step.sha256",)),
        (lambda d: d["graphs"]["step"].update(file="../x.onnx"), ("graphs.step.file",)),
        (lambda d: d["graphs"].update(extra={}), ("graphs.extra",)),
        (lambda d: d["state"][0].update(size=0), ("state[0].size", ">= 1")),
    ],
)
def test_altered_manifest(copy_of, change, words):
    edit_manifest(copy_of, change)
    refused(copy_of, "manifest.json", *words)


def test_manifest_that_is_not_json(copy_of):
    (copy_of / "manifest.json").write_bytes(b'{"format": "sketchrnn-portable", \xff')
    refused(copy_of, "manifest.json", "not valid JSON")
    (copy_of / "manifest.json").write_text("[1, 2]")
    refused(copy_of, "manifest.json", "must be a JSON object")
    (copy_of / "manifest.json").unlink()
    refused(copy_of, "manifest.json", "missing")
    refused(copy_of / "step.onnx", "not a folder")


def test_unknown_fields_are_kept_aside(copy_of):
    edit_manifest(copy_of, lambda d: d.update(comment="from a later exporter"))
    assert PortableModel(copy_of).manifest.extra["comment"] == "from a later exporter"


def test_reader_checks_its_arguments(exported):
    portable = PortableModel(exported)
    with pytest.raises(ValueError, match="lengths must lie in 1..3"):
        portable.encode(np.zeros((1, 3, 5)), np.array([4]))
    with pytest.raises(ValueError, match="pass z"):
        portable.initial_state()
    with pytest.raises(ValueError, match="no label graph|no read"):
        portable.run("label", {})


# ----------------------------------------------------------------------------- export


def test_cli_exports_a_folder_and_reports_sizes(tmp_path, capsys):
    tiny_vae().save_pretrained(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    for file in ("encode.onnx", "init.onnx", "step.onnx", "read.onnx", "manifest.json"):
        size = (tmp_path / "out" / file).stat().st_size
        assert f"{file}" in out and f"{size:,} bytes" in out
    assert "total" in out and "onnxruntime matches PyTorch to" in out
    assert read_manifest(tmp_path / "out").name == "thing"


def test_cli_refuses_an_out_that_exists(tmp_path, capsys):
    tiny_vae().save_pretrained(tmp_path / "model")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "out")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "out"), "--overwrite"]) == 2
    assert "not a portable model folder: not replaced" in capsys.readouterr().err
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out"]  # no leftovers


def test_overwrite_replaces_a_portable_model(tmp_path, exported):
    shutil.copytree(exported, tmp_path / "out")
    model = tiny_vae(z_size=5)
    with pytest.raises(ExportError, match="exists"):
        export_portable(model, tmp_path / "out")
    export_portable(model, tmp_path / "out", overwrite=True, with_read=False)
    assert read_manifest(tmp_path / "out").latent_size == 5
    assert not (tmp_path / "out" / "read.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_out_that_cannot_be_written(tmp_path, capsys):
    tiny_vae().save_pretrained(tmp_path / "model")
    (tmp_path / "file").write_text("a file, not a folder")
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert "file" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "model"]


def test_unexportable_model(tmp_path, capsys):
    ConvVAE(ConvVAEConfig(image_size=16, z_size=4)).save_pretrained(tmp_path / "conv")
    assert main(["export", str(tmp_path / "conv"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "a ConvVAE cannot be exported" in err and "draw strokes" in err
    with pytest.raises(ExportError, match="ConvVAE"):
        export_portable(ConvVAE(ConvVAEConfig(image_size=16, z_size=4)), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv"]


def test_model_without_a_scale_factor(tmp_path):
    model = SketchRNN(SketchRNNConfig.preset("small", dec_hidden=16, conditional=False))
    with pytest.raises(ExportError, match="no scale_factor"):
        export_portable(model.eval(), tmp_path / "out")
    export_portable(model, tmp_path / "out", scale_factor=3.5, with_read=False)
    assert read_manifest(tmp_path / "out").scale_factor == 3.5


@pytest.mark.parametrize("out", ["out", "e.vae.json"])
@pytest.mark.parametrize("value", ["1e308", "1e-9", "inf", "0"])
def test_scale_factor_bounded(tmp_path, capsys, out, value):
    """Issue #26: ``export RUN e.vae.json --scale-factor 1e308`` wrote a model that sample
    then refused."""
    tiny_vae(num_mixtures=20).save_pretrained(tmp_path / "model")
    argv = ["export", str(tmp_path / "model"), str(tmp_path / out), "--scale-factor", value]
    with pytest.raises(SystemExit) as caught:  # refused as the option is parsed
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--scale-factor: must be in [1e-06, 100000]" in err and value in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_model_scale_factor_out_of_range(tmp_path):
    model = tiny_vae()
    with pytest.raises(ValueError, match=r"scale_factor must be a number in \[1e-06, 100000\]"):
        model.set_units(scale_factor=1e30)  # the config holds none out of the range
    model.config.scale_factor = 1e30  # past the config's check: the exporter checks again
    with pytest.raises(ExportError, match=r"scale_factor must lie in \[1e-06, 100000\]"):
        export_portable(model, tmp_path / "out")


def test_portable_options_refused_for_json(tmp_path, capsys):
    tiny_vae(num_mixtures=20).save_pretrained(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "e.vae.json"), "--float16"]) == 2
    assert "--float16: applies to a portable model folder" in capsys.readouterr().err


def test_float16_storage(tmp_path, exported):
    """Half the bytes; onnxruntime then differs from the float32 model by the weights' rounding
    (bounded by FLOAT16_TOLERANCE, measured and reported), the graphs' signatures unchanged."""
    result = export_portable(tiny_vae(), tmp_path / "half", float16=True)
    assert result.manifest.dtype == "float16"
    assert 0 < result.max_difference <= FLOAT16_TOLERANCE
    full = read_manifest(exported)
    for name, spec in result.manifest.graphs.items():
        assert (spec.inputs, spec.outputs) == (full.graphs[name].inputs, full.graphs[name].outputs)
    assert result.sizes["encode.onnx"] < full.graphs["encode"].bytes
    PortableModel(tmp_path / "half")


def test_missing_extra_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(
        MissingExtraError, match=r"needs? onnxscript: pip install 'sketchrnn\[onnx\]'"
    ):
        require_onnx("onnxscript")
    with pytest.raises(MissingExtraError):
        export_portable(tiny_vae(), tmp_path / "out")
    assert not list(tmp_path.iterdir())
