"""Reading a TF.js layers model with numpy and running it in PyTorch with Keras' meaning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import shared_file
from judge.tfjs_fixtures import reference_forward, tiny_weights, write_layers_model

from sketchrnn.io.files import SketchFileError
from sketchrnn.io.tfjs_layers import read_tfjs_layers
from sketchrnn.judge import load_judge
from sketchrnn.judge.network import SequentialClassifier


def test_reads_doodlenet_layout():
    model = read_tfjs_layers(shared_file("doodlenet/model.json"))
    assert model.input_shape == (28, 28, 1)
    assert [layer["class_name"] for layer in model.layers].count("Conv2D") == 6
    assert model.weights["conv2d/kernel"].shape == (3, 3, 1, 16)
    assert model.weights["dense/kernel"].shape == (576, 512)
    assert model.weights["dense_1/bias"].dtype == np.float32
    net = SequentialClassifier(model)
    assert (net.num_classes, net.feature_size) == (345, 512)


def test_forward_matches_keras_semantics(tmp_path):
    """Kernel transposes, 'same' / 'valid' padding, pooling that rounds down, the flatten in
    (H, W, C) order and the penultimate features, against a numpy reference."""
    weights = tiny_weights(seed=3)
    folder = write_layers_model(tmp_path / "m", weights=weights)
    net = SequentialClassifier(read_tfjs_layers(folder / "model.json"))
    images = np.random.default_rng(1).random((3, 28, 28)).astype(np.float32)
    with torch.no_grad():
        logits, features = net(torch.from_numpy(images))
    for k in range(3):
        p, f = reference_forward(weights, images[k])
        assert np.allclose(torch.softmax(logits[k].double(), 0).numpy(), p, atol=1e-5)
        assert np.allclose(features[k].numpy(), f, atol=1e-5)
    judge = load_judge(folder)
    verdict = judge.judge_images(images)
    assert verdict.features.shape == (3, 5) and verdict.log_probs.shape == (3, 7)
    assert np.allclose(verdict.probs.sum(axis=1), 1, atol=1e-5)


def test_input_shape_checked(tmp_path):
    folder = write_layers_model(tmp_path / "m")
    net = SequentialClassifier(read_tfjs_layers(folder / "model.json"))
    with pytest.raises(ValueError, match="images must be"):
        net(torch.zeros(2, 27, 28))


# ----------------------------------------------------------------------------- hostile files


def _edit_json(folder, change) -> None:
    path = folder / "model.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _weight_specs(doc):
    return doc["weightsManifest"][0]["weights"]


def _layers(doc):
    return doc["modelTopology"]["model_config"]["config"]["layers"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(format="graph-model"), "not a TF.js layers model"),
        (lambda d: d.pop("modelTopology"), "no 'modelTopology'"),
        (lambda d: d["modelTopology"]["model_config"].update(class_name="Functional"),
         "only Sequential"),
        (lambda d: d.pop("weightsManifest"), "weightsManifest"),
        (lambda d: _weight_specs(d)[0].update(dtype="int32"), "'int32' weights are not read"),
        (lambda d: _weight_specs(d)[0].update(quantization={"dtype": "uint8"}), "quantised"),
        (lambda d: _weight_specs(d)[0].update(shape=[3, -3]), "not a list of sizes"),
        (lambda d: d["weightsManifest"][0].update(paths=["../w.bin"]), "not a plain file name"),
        (lambda d: d["weightsManifest"][0].update(paths=["missing.bin"]), "cannot read weight"),
        (lambda d: _weight_specs(d).pop(), "weights take"),
        (lambda d: _layers(d)[0]["config"].pop("batch_input_shape"), "batch_input_shape"),
    ],
)  # fmt: skip
def test_bad_model_json_is_one_line_naming_the_file(tmp_path, change, message):
    folder = write_layers_model(tmp_path / "m")
    _edit_json(folder, change)
    with pytest.raises(SketchFileError, match=message) as err:
        load_judge(folder)
    assert "\n" not in str(err.value) and "m/" in str(err.value)


@pytest.mark.parametrize(
    "layers, message",
    [
        (lambda ls: ls.insert(1, {"class_name": "BatchNormalization", "config": {}}),
         "BatchNormalization layers are not supported"),
        (lambda ls: ls[0]["config"].update(activation="swish"), "activation 'swish'"),
        (lambda ls: ls[6]["config"].update(activation="softmax"), "activation 'softmax'"),
        (lambda ls: ls[0]["config"].update(strides=[2, 2]), "padding 'same'"),
        (lambda ls: ls[0]["config"].update(data_format="channels_first"), "channels_last"),
        (lambda ls: ls[0]["config"].update(name="other"), "weights are missing"),
        (lambda ls: ls.append({"class_name": "Dropout", "config": {"name": "x"}}),
         "last layer must be the Dense"),
    ],
)  # fmt: skip
def test_unsupported_layers_are_refused(tmp_path, layers, message):
    folder = write_layers_model(tmp_path / "m")
    _edit_json(folder, lambda d: layers(_layers(d)))
    with pytest.raises(SketchFileError, match=message):
        load_judge(folder)


def test_bad_weight_files(tmp_path):
    weights = tiny_weights()
    size = sum(v.size for v in weights.values()) * 4
    for name, shard, message in [
        ("short", b"\0" * (size - 4), "take"),
        ("long", b"\0" * (size + 4), "take"),
        ("nan", np.full(size // 4, np.nan, "<f4").tobytes(), "NaN or infinite"),
    ]:
        folder = write_layers_model(tmp_path / name, shard=shard)
        with pytest.raises(SketchFileError, match=message):
            load_judge(folder)
    folder = write_layers_model(tmp_path / "json")
    (folder / "model.json").write_text("{not json")
    with pytest.raises(SketchFileError, match="invalid JSON"):
        load_judge(folder)


def test_bad_class_names(tmp_path):
    folder = write_layers_model(tmp_path / "few", class_names=["a", "b"])
    with pytest.raises(SketchFileError, match="2 class names .* for 7 outputs"):
        load_judge(folder)
    folder = write_layers_model(tmp_path / "twice", class_names=["a", "b_c", "b c"] + list("defg"))
    with pytest.raises(SketchFileError, match="listed twice"):
        load_judge(folder)
    folder = write_layers_model(tmp_path / "gone")
    (folder / "class_names.txt").unlink()
    with pytest.raises(SketchFileError, match="cannot read the class names"):
        load_judge(folder)
    with pytest.raises(FileNotFoundError, match="no such judge"):
        load_judge(tmp_path / "nowhere")
