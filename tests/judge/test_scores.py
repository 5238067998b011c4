"""Rec with intervals, the Frechet distance, precision / recall, and the report files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from judge.tfjs_fixtures import write_layers_model

from sketchrnn.judge import Judgement, load_judge
from sketchrnn.judge.scores import (
    frechet_distance,
    judge_report,
    rec_rows,
    set_scores,
    wilson_interval,
)


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory):
    """A 7-class judge (class_0 ... class_6) whose verdicts the tests write by hand."""
    return load_judge(write_layers_model(tmp_path_factory.mktemp("judge") / "m"))


def verdict_of(first: list[int], second: list[int] | None = None, classes: int = 7) -> Judgement:
    """Drawings whose most likely class is ``first[i]`` (p 0.6) and second ``second[i]``."""
    p = np.full((len(first), classes), 0.1 / (classes - 2))
    for i, k in enumerate(first):
        p[i, k] = 0.6
        p[i, (k + 1) % classes if second is None else second[i]] = 0.3
    features = np.random.default_rng(0).normal(size=(len(first), 5)).astype(np.float32)
    return Judgement(np.log(p).astype(np.float32), features)


def test_wilson_interval():
    low, high = wilson_interval(3, 10)
    assert (round(low, 4), round(high, 4)) == (0.1078, 0.6032)
    assert wilson_interval(0, 10)[0] == 0 and wilson_interval(10, 10)[1] == 1
    assert all(np.isnan(wilson_interval(0, 0)))


def test_rec_rows(tiny_judge):
    # class_1: 3 of 4 first, the 4th second; class_2: none first; "sheep": unknown; None: none
    first = [1, 1, 1, 0, 5, 5, 2, 3]
    second = [2, 2, 2, 1, 6, 6, 0, 4]
    labels = ["class_1"] * 4 + ["class_2"] * 2 + ["sheep", None]
    rows = {r.name: r for r in rec_rows(tiny_judge, verdict_of(first, second), labels)}
    assert list(rows) == ["class 1", "class 2", "sheep", "", "all"]
    c1 = rows["class 1"]
    assert (c1.count, c1.scored, c1.top1, c1.top5) == (4, 4, 0.75, 1.0)
    assert c1.top1_low < 0.75 < c1.top1_high and c1.top5_high == 1
    assert c1.confidence == pytest.approx(0.6) and c1.class_probability == pytest.approx(
        (3 * 0.6 + 0.3) / 4
    )
    assert (c1.most_predicted, c1.most_predicted_share) == ("class 1", 0.75)
    assert rows["class 2"].top1 == 0 and rows["class 2"].class_probability == pytest.approx(0.02)
    assert rows["sheep"].top1 is None and rows["sheep"].scored == 0
    everything = rows["all"]
    assert (everything.count, everything.scored) == (8, 6)
    assert everything.top1 == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="labels for"):
        rec_rows(tiny_judge, verdict_of([1]), ["a", "b"])


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shifted = a + np.array([3.0, 0, 0])
    assert frechet_distance(a, shifted) == pytest.approx(9.0, rel=1e-6)
    # two Gaussians with diagonal covariances: sum (s1 - s2)^2 over the axes, plus the means
    b = rng.normal(size=(4000, 3)) * np.array([2.0, 1, 1])
    expected = ((a.std(0, ddof=1) - b.std(0, ddof=1)) ** 2).sum() + (
        (a.mean(0) - b.mean(0)) ** 2
    ).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, abs=0.05)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(a[:1], a)


def test_frechet_distance_is_the_sqrtm_formula():
    """The eigenvalue route gives FID's usual formula with scipy's sqrtm, also for fewer
    drawings than dimensions (singular covariances, as 200 samples in 512-d)."""
    from scipy import linalg

    rng = np.random.default_rng(2)
    for n, m, d in [(500, 400, 6), (20, 30, 40)]:
        a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        b = rng.normal(size=(m, d)) * 1.5 + 0.3
        ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = np.real(linalg.sqrtm(ca @ cb))
        expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root)
        assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-4)


def test_precision_recall():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(300, 4)).astype(np.float32)
    same = set_scores(real, real.copy())
    assert same.precision == same.recall == same.coverage == 1.0
    assert same.frechet_distance == pytest.approx(0, abs=1e-5)
    # a generated set stuck on part of the real one: precise, poor recall
    part = real[real[:, 0] > 1.0]
    collapsed = set_scores(real, part)
    assert collapsed.precision == 1.0 and collapsed.recall < 0.7 and collapsed.coverage < 0.3
    far = set_scores(real, real + 10)
    assert far.precision == 0 and far.recall == 0
    with pytest.raises(ValueError, match="more than 6"):
        set_scores(real[:6], real)  # prdc's k-th neighbour within a set counts the drawing
    assert set_scores(real[:7], real).nearest_k == 5


def test_report_files(tiny_judge, tmp_path):
    verdict = verdict_of([1, 1, 2, 3, 4, 5, 6, 0])
    report = judge_report(
        tiny_judge, verdict, ["class_1"] * 8, verdict, nearest_k=3, settings={"model": "m"}
    )
    report.write(tmp_path / "r.csv")
    report.write(tmp_path / "r.json")
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["class 1", "all"]
    assert float(rows[0]["top1"]) == 0.25 and rows[0]["frechet_distance"] == ""
    assert float(rows[1]["precision"]) == 1.0 and rows[1]["nearest_k"] == "3"
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["settings"] == {"model": "m"} and doc["all"]["count"] == 8
    assert doc["set_scores"]["recall"] == 1.0 and doc["confidence_level"] == 0.95
    assert "| class 1 | 8 | 25.0% [" in report.format_table()
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        report.write(tmp_path / "r.txt")
    # a class with no drawing's interval is NaN: null in JSON, not an invalid NaN token
    unknown = judge_report(tiny_judge, verdict, [None] * 8)
    unknown.write(tmp_path / "u.json")
    assert json.loads((tmp_path / "u.json").read_text())["all"]["top1"] is None
