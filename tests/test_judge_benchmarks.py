"""The judge's benchmarks at a tiny size: the runtime comparison's statistics, the temperature
sweep, and the one-shot generation pipeline (split, train with the CLI, draw, judge)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import shared_file

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_newcombe_difference_interval():
    script = load_script("judge_magenta")
    from sketchrnn.judge.scores import wilson_interval

    a = {"top1": 56 / 70, "top1_ci": wilson_interval(56, 70)}
    b = {"top1": 48 / 80, "top1_ci": wilson_interval(48, 80)}
    d, low, high = script.newcombe_difference(a, b)
    # Newcombe (1998), Table II example (a), method 10: 56/70 - 48/80 in 0.0524 to 0.3339
    assert d == pytest.approx(0.2) and low == pytest.approx(0.0524, abs=1e-4)
    assert high == pytest.approx(0.3339, abs=1e-4)
    same = script.newcombe_difference(a, a)
    assert same[1] < 0 < same[2]


def test_temperature_sweep_on_one_model(tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    (models / "sheep.gen.json").symlink_to(shared_file("magenta_models/sheep.gen.json"))
    script = load_script("judge_magenta")
    script.main([
        "--models", str(models), "--n", "4", "--temperatures", "0.2,0.9", "--skip-node",
        "--judge", str(shared_file("doodlenet")), "--work", str(tmp_path / "work"),
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert "| 0.2 | " in out and "| 0.9 | " in out
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    sheep = results["sweep"]["models"]["sheep"]
    assert sheep["0.2"]["n"] == 4 and 0 <= sheep["0.9"]["top1"] <= 1


@pytest.mark.slow
def test_runtime_comparison_with_magenta_js(tmp_path, capsys):
    given = str(ROOT / "node_modules")
    if shutil.which("node") is None or not (ROOT / "node_modules" / "@magenta" / "sketch").is_dir():
        pytest.skip("node or the repository's node_modules (`make node_modules`) is missing")
    models = tmp_path / "models"
    models.mkdir()
    for name in ("sheep", "antyoga"):
        (models / f"{name}.gen.json").symlink_to(shared_file(f"magenta_models/{name}.gen.json"))
    script = load_script("judge_magenta")
    script.main([
        "--models", str(models), "--n", "3", "--skip-sweep", "--node-modules", given,
        "--judge", str(shared_file("doodlenet")), "--work", str(tmp_path / "work"),
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert "| sheep | " in out and "antyoga (not a Quick, Draw! class" in out
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    sheep = results["runtimes"]["sheep"]
    assert sheep["ours"]["n"] == sheep["magenta.js"]["n"] == 3
    assert len(sheep["difference_top1"]) == 3


@pytest.mark.slow
def test_one_shot_generation_end_to_end(tmp_path):
    simplified = tmp_path / "simplified"
    simplified.mkdir()
    for name in ("cat", "dog", "sheep", "bicycle"):
        source = shared_file(f"quickdraw/simplified/{name}.ndjson")
        (simplified / f"{name}.ndjson").symlink_to(source)
    figure = tmp_path / "pairs.png"
    cmd = [
        sys.executable, str(BENCHMARKS / "one_shot_generation.py"), "--simplified",
        str(simplified), "--unseen", "1", "--seen", "1", "--examples", "3", "--steps", "2",
        "--minutes", "0", "--batch-size", "8", "--eval-every", "0", "--work",
        str(tmp_path / "work"), "--figure", str(figure), "--judge", str(shared_file("doodlenet")),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    split = json.loads((tmp_path / "work" / "split.json").read_text())
    assert len(split["unseen"]) == len(split["seen"]) == 1 and len(split["train"]) == 3
    assert split["unseen"][0] not in split["train"] and split["seen"][0] in split["train"]
    results = json.loads((tmp_path / "work" / "one_shot.json").read_text())
    for name in ("seen", "unseen"):
        r = results["sets"][name]
        assert r["examples"] == 3 and r["generated_in_set"]["n"] == 3
        assert r["real_all"]["top5"] >= 0  # the real examples were judged
    assert "| seen (1) | 3 |" in done.stdout and figure.stat().st_size > 0
