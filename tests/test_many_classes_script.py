"""benchmarks/many_classes.py: raw drawings already in the simplified files are not packed twice,
and the whole run (pack, two trainings with the CLI, L_R, Rec, figure) works at a tiny size."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import shared_file

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "many_classes.py"


def load_script():
    spec = importlib.util.spec_from_file_location("many_classes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shape(kind: str, rng: np.random.Generator) -> list[list[list[float]]]:
    """One drawing as Quick, Draw! strokes [[xs], [ys]] in a 0-255 box."""
    n = {"triangle": 3, "square": 4, "hexagon": 6}[kind]
    angles = np.linspace(0, 2 * np.pi, n + 1) + rng.uniform(0, 0.3)
    r = rng.uniform(60, 120)
    xs = 128 + r * np.cos(angles) + rng.normal(0, 2, n + 1)
    ys = 128 + r * np.sin(angles) + rng.normal(0, 2, n + 1)
    return [[np.round(xs).tolist(), np.round(ys).tolist()]]


def write_class_files(root: Path, per_class: int = 24) -> tuple[Path, Path]:
    """simplified/ with ``per_class`` drawings per class; raw/ with 3 of those drawings again
    (same key_id, as raw [x, y, t] strokes) and 2 new ones per class."""
    rng = np.random.default_rng(0)
    simplified, raw = root / "simplified", root / "raw"
    simplified.mkdir()
    raw.mkdir()
    for c, kind in enumerate(("triangle", "square", "hexagon")):
        rows, raw_rows = [], []
        for i in range(per_class + 2):
            drawing = shape(kind, rng)
            key = str(10_000 * (c + 1) + i)
            record = {"word": kind, "key_id": key, "recognized": True, "drawing": drawing}
            if i < per_class:
                rows.append(json.dumps(record))
            if i < 3 or i >= per_class:
                timed = [[xs, ys, list(range(len(xs)))] for xs, ys in drawing]
                raw_rows.append(json.dumps({**record, "drawing": timed}))
        (simplified / f"{kind}.ndjson").write_text("\n".join(rows) + "\n")
        (raw / f"{kind}.ndjson").write_text("\n".join(raw_rows) + "\n")
    return simplified, raw


def test_raw_duplicates_of_simplified_drawings_are_left_out(tmp_path, capsys):
    simplified, raw = write_class_files(tmp_path)
    script = load_script()
    written = script.raw_without_duplicates(
        sorted(raw.glob("*.ndjson")), sorted(simplified.glob("*.ndjson")), tmp_path / "extra"
    )
    assert sorted(p.name for p in written) == ["hexagon.ndjson", "square.ndjson", "triangle.ndjson"]
    for path in written:
        keys = [json.loads(line)["key_id"] for line in path.read_text().splitlines()]
        assert len(keys) == 2 and all(int(k) % 10_000 >= 24 for k in keys)
    assert "6 drawings not in the simplified files kept, 9 duplicates" in capsys.readouterr().out


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end_at_a_tiny_size(tmp_path):
    simplified, raw = write_class_files(tmp_path)
    figure = tmp_path / "grid.png"
    cmd = [
        sys.executable, str(SCRIPT), "--simplified", str(simplified), "--raw", str(raw),
        "--steps", "2", "--batch-size", "16", "--eval-every", "0", "--minutes", "0",
        "--samples", "2", "--work", str(tmp_path / "work"), "--figure", str(figure),
        "--judge", str(shared_file("doodlenet")), "--resume-to", "3",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    # 3 classes x 24 simplified + 2 new raw drawings each: the 9 duplicates are not packed.
    assert "78 sketches" in out
    assert "3 / 3 steps" in out  # trained to 2, then both resumed to 3
    table = [line for line in out.splitlines() if line.startswith("| ")]
    rows = {line.split("|")[1].strip(): line for line in table}
    assert "Rec: classified as the class it was drawn for (top-1)" in rows
    # the judge knows real squares and triangles: the ceiling is well above chance
    ceiling = rows["Rec, top-5"].split("|")[2].strip()
    assert float(ceiling.split("%")[0]) > 20, ceiling
    lr = rows["test L_R, mean over classes"].split("|")
    assert all(np.isfinite(float(x)) for x in (lr[3], lr[4]))
    wins = rows["classes where it has the lower test L_R"].split("|")
    assert sum(int(x.split(" of ")[0]) for x in (wins[3], wins[4])) == 3
    assert figure.stat().st_size > 0
    for name in ("conditional", "unconditional"):
        record = json.loads((tmp_path / "work" / f"{name}.done.json").read_text())
        assert record["steps"] == 3 and record["resumed"][0]["from_step"] == 2
        assert ("--class-conditional" in record["command"]) == (name == "conditional")
