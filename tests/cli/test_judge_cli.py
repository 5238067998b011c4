"""``sketchrnn judge``: a model's samples or endings, or files of drawings, scored by the judge
(DoodleNet from ../shared/data/doodlenet, given with --judge: no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import shared_file

from sketchrnn.cli import main
from sketchrnn.io.formats import write_sketches
from sketchrnn.io.sketchset import SketchSet
from sketchrnn.synthetic import synthetic_sketchset


@pytest.fixture(scope="module")
def judge_dir():
    return str(shared_file("doodlenet"))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["judge", *args, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_drawings_with_real_ones(capsys, tmp_path, judge_dir):
    cats = shared_file("quickdraw/simplified/cat.ndjson")
    dogs = shared_file("quickdraw/simplified/dog.ndjson")
    real = shared_file("quickdraw/raw/cat.ndjson")
    csv_out, json_out = tmp_path / "r.csv", tmp_path / "r.json"
    code, out, err = run(
        capsys, "--drawings", str(cats), str(dogs), "--real", str(real), "--judge", judge_dir,
        "--out", str(csv_out), str(json_out),
    )  # fmt: skip
    assert code == 0, err
    assert "| cat | 25 |" in out and "| dog | 25 |" in out and "Frechet distance" in out
    doc = json.loads(json_out.read_text())
    assert [c["name"] for c in doc["classes"]] == ["cat", "dog"]
    assert doc["classes"][0]["top5"] >= 0.8  # real cats: the judge knows them
    assert doc["set_scores"]["real_count"] >= 18 and doc["set_scores"]["generated_count"] == 50
    assert csv_out.read_text().splitlines()[0].startswith("name,count,scored,top1,")


def test_model_samples_and_endings(capsys, tmp_path, judge_dir):
    out_json = tmp_path / "samples.json"
    code, out, err = run(
        capsys, "--model", "shapes_gen", "--class", "circle", "--n", "6", "--seed", "0",
        "--judge", judge_dir, "--out", str(out_json),
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["all"]["count"] == 6 and doc["settings"]["temperature"] == 0.5
    assert doc["classes"][0]["name"] == "circle"
    # endings of the first half of three synthetic squares, two each
    squares = synthetic_sketchset(n_per_class=3, classes=["square"], seed=1)
    prefixes = tmp_path / "squares.npz"
    write_sketches(prefixes, squares)
    code, out, err = run(
        capsys, "--model", "shapes_gen", "--prefixes", str(prefixes), "--prefix-fraction", "0.5",
        "--n", "2", "--seed", "0", "--judge", judge_dir, "--out", str(out_json),
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["all"]["count"] == 6 and doc["classes"][0]["name"] == "square"
    assert doc["settings"]["prefix_fraction"] == 0.5


@pytest.mark.parametrize(
    "args, message",
    [
        (["--drawings", "{cats}", "--prefixes", "{cats}"], "--prefixes needs --model"),
        (["--drawings", "{cats}", "--out", "r.txt"], "--out r.txt: write a .csv or .json"),
        (["--drawings", "{cats}", "--class", "cat", "dog"], "one class name"),
        (["--drawings", "{cats}", "--judge", "{tmp}/nowhere"], "no such judge"),
        (["--drawings", "{bad}"], "bad.ndjson:2"),
        (["--drawings", "{cats}", "--real", "{few}"], "--real: 3 drawings"),
        (["--model", "shapes_gen", "--n", "20000"], "at most 10,000"),
        (["--model", "shapes_gen", "--class", "circle", "square"], "not class-conditional"),
    ],
)
def test_bad_input_is_one_line(capsys, tmp_path, judge_dir, args, message):
    cats = shared_file("quickdraw/simplified/cat.ndjson")
    lines = cats.read_text().splitlines()
    (tmp_path / "bad.ndjson").write_text(lines[0] + "\n{not json\n")
    few = SketchSet([np.array([[0, 0, 0], [5, 5, 1]], np.float32)] * 3, ["cat"] * 3)
    write_sketches(tmp_path / "few.npz", few)
    values = dict(cats=cats, tmp=tmp_path, bad=tmp_path / "bad.ndjson", few=tmp_path / "few.npz")
    filled = [a.format(**values) for a in args]
    if "--judge" not in filled:
        filled += ["--judge", judge_dir]
    code, out, err = run(capsys, *filled)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r.txt").exists()


def test_skip_invalid_drawings(capsys, tmp_path, judge_dir):
    cats = shared_file("quickdraw/simplified/cat.ndjson")
    lines = cats.read_text().splitlines()
    (tmp_path / "bad.ndjson").write_text("\n".join(lines[:3]) + "\n{not json\n")
    code, out, err = run(
        capsys, "--drawings", str(tmp_path / "bad.ndjson"), "--skip-invalid", "--judge", judge_dir
    )
    assert code == 0 and "| cat | 3 |" in out
