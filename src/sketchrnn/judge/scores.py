"""Scores from the judge's verdicts: Rec per class, its confidence, Frechet distance, precision.

- **Rec** (recognisability): of the drawings made for class ``c``, the fraction the judge
  puts first (top-1) or among its five first (top-5), each with a 95% Wilson interval
  (``scipy.stats.binomtest(...).proportion_ci``); the judge's *confidence* is the mean
  probability of each drawing's most likely class, and ``p(class)`` the mean probability it
  gives the class asked for. Drawings with no class (or one the judge does not know) get the
  label-free columns only.
- **Frechet distance** between the judge's penultimate features of real and of generated
  drawings (FID's formula in the judge's 512-d features): ``|mu_r - mu_g|^2 + tr(S_r + S_g -
  2 (S_r S_g)^(1/2))``, the trace of the matrix square root from ``scipy.linalg.eigh``
  (torchmetrics' FID would take images and pull in lightning-utilities; the formula is a few
  lines over scipy).
- **Precision / recall** (Kynkaanniemi et al. 2019) and **density / coverage** (Naeem et al.
  2020) of the generated set against the real one in the same features, by ``prdc`` (the
  authors' package), with ``nearest_k`` neighbours (5, as they recommend). It compares all
  pairs: memory grows as (real + generated)^2.

:func:`judge_report` gathers them into a :class:`JudgeReport`, which writes itself as CSV
(one row per class and ``all``; the set scores on the ``all`` row) or JSON.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from sketchrnn.judge.classifier import Judge, Judgement

__all__ = [
    "CONFIDENCE_LEVEL",
    "NEAREST_K",
    "ClassRow",
    "SetScores",
    "JudgeReport",
    "wilson_interval",
    "rec_rows",
    "frechet_distance",
    "set_scores",
    "judge_report",
]

CONFIDENCE_LEVEL = 0.95
NEAREST_K = 5
ALL = "all"


def wilson_interval(hits: int, count: int, level: float = CONFIDENCE_LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``hits / count`` (``(nan, nan)`` for none)."""
    if count == 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(int(hits), int(count)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


@dataclass(frozen=True)
class ClassRow:
    """Scores of the drawings made for one class (``name``; ``"all"`` for every drawing).

    ``scored`` counts the drawings whose class the judge knows (Rec's denominator); ``top1`` /
    ``top5`` are fractions with their Wilson interval (``None`` where the judge does not know
    the class, or no class was asked for); ``confidence`` the mean probability of each
    drawing's most likely class; ``class_probability`` the mean probability of the class asked
    for; ``most_predicted`` the judge's most frequent first choice and ``most_predicted_share``
    its share."""

    name: str
    count: int
    scored: int
    top1: float | None
    top1_low: float | None
    top1_high: float | None
    top5: float | None
    top5_low: float | None
    top5_high: float | None
    confidence: float
    class_probability: float | None
    most_predicted: str
    most_predicted_share: float


def _row(
    name: str,
    judge: Judge,
    verdict: Judgement,
    rows: np.ndarray,
    targets: np.ndarray,
) -> ClassRow:
    """The row of drawings ``rows``; ``targets`` their class indices (-1: none, not scored)."""
    top = verdict.top(5)[rows]
    first, times = Counter(top[:, 0].tolist()).most_common(1)[0]
    known = targets >= 0
    scored = int(known.sum())
    top1 = top5 = p_class = None
    ci1: tuple[float | None, float | None] = (None, None)
    ci5 = ci1
    if scored:
        hits1 = int((top[known, 0] == targets[known]).sum())
        hits5 = int((top[known] == targets[known, None]).any(axis=1).sum())
        top1, top5 = hits1 / scored, hits5 / scored
        ci1, ci5 = wilson_interval(hits1, scored), wilson_interval(hits5, scored)
        p_class = float(np.exp(verdict.log_probs[rows[known], targets[known]]).mean())
    return ClassRow(
        name=name,
        count=len(rows),
        scored=scored,
        top1=top1,
        top1_low=ci1[0],
        top1_high=ci1[1],
        top5=top5,
        top5_low=ci5[0],
        top5_high=ci5[1],
        confidence=float(verdict.confidence()[rows].mean()),
        class_probability=p_class,
        most_predicted=judge.classes[first],
        most_predicted_share=times / len(rows),
    )


def rec_rows(judge: Judge, verdict: Judgement, labels: Sequence[str | None]) -> list[ClassRow]:
    """One :class:`ClassRow` per distinct label (in first-seen order, a class the judge knows
    in its spelling; ``None`` or ``""``: no class asked for, named ``""``), then the ``"all"``
    row. Rec over all counts only the
    drawings whose class the judge knows (``scored``)."""
    if len(labels) != len(verdict):
        raise ValueError(f"{len(labels)} labels for {len(verdict)} drawings")
    if len(verdict) == 0:
        raise ValueError("no drawings to score")
    # A class the judge knows is named in its spelling ("roller_coaster" -> "roller coaster").
    found = {n: judge.find_class(n) if n else None for n in {str(x or "") for x in labels}}
    given = [str(label or "") for label in labels]
    targets = np.array([-1 if found[n] is None else found[n] for n in given], dtype=np.int64)
    pairs = zip(given, targets, strict=True)
    names = np.array([judge.classes[t] if t >= 0 else n for n, t in pairs], dtype=object)
    out = []
    for name in dict.fromkeys(names):
        rows = np.flatnonzero(names == name)
        out.append(_row(name, judge, verdict, rows, targets[rows]))
    return out + [_row(ALL, judge, verdict, np.arange(len(names)), targets)]


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets ``(N, D)``, ``(M, D)``
    (N, M >= 2), computed in float64.

    ``tr((S_r S_g)^(1/2))`` is the sum of the square roots of the eigenvalues of
    ``S_r^(1/2) S_g S_r^(1/2)`` (symmetric, the same eigenvalues as ``S_r S_g``): two
    ``scipy.linalg.eigh`` calls, the same value as ``scipy.linalg.sqrtm`` (tested) at a
    tenth of the time for 512-d features.
    """
    from scipy import linalg

    a, b = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a Frechet distance needs at least 2 drawings in each set")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(inner, 0, None)).sum()  # rounding: tiny negative values
    spread = np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return max(float(((mu_a - mu_b) ** 2).sum() + spread), 0.0)


@dataclass(frozen=True)
class SetScores:
    """The generated set against the real one, in the judge's features."""

    frechet_distance: float
    precision: float
    recall: float
    density: float
    coverage: float
    nearest_k: int
    real_count: int
    generated_count: int


def set_scores(real: np.ndarray, generated: np.ndarray, nearest_k: int = NEAREST_K) -> SetScores:
    """Frechet distance and prdc's precision, recall, density and coverage of ``generated``
    ``(M, D)`` against ``real`` ``(N, D)``; both sets need more than ``nearest_k + 1``
    drawings (prdc's k-th neighbour within a set counts the drawing itself)."""
    if nearest_k < 1:
        raise ValueError(f"nearest_k must be >= 1, got {nearest_k}")
    if min(len(real), len(generated)) <= nearest_k + 1:
        raise ValueError(
            f"precision and recall with {nearest_k} nearest neighbours need more than "
            f"{nearest_k + 1} real and generated drawings (got {len(real)} and {len(generated)})"
        )
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        found = compute_prdc(
            np.asarray(real, np.float32), np.asarray(generated, np.float32), nearest_k
        )
    return SetScores(
        frechet_distance=frechet_distance(real, generated),
        precision=float(found["precision"]),
        recall=float(found["recall"]),
        density=float(found["density"]),
        coverage=float(found["coverage"]),
        nearest_k=nearest_k,
        real_count=len(real),
        generated_count=len(generated),
    )


@dataclass
class JudgeReport:
    """Rows per class and ``all`` (:class:`ClassRow`), the set scores against real drawings
    when given, and ``settings`` (what was judged, how: free-form, kept in the JSON)."""

    rows: list[ClassRow]
    set_scores: SetScores | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def overall(self) -> ClassRow:
        return self.rows[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "confidence_level": CONFIDENCE_LEVEL,
            "classes": [asdict(r) for r in self.rows[:-1]],
            "all": asdict(self.overall),
            "set_scores": None if self.set_scores is None else asdict(self.set_scores),
        }

    def csv_rows(self) -> list[dict[str, Any]]:
        """Rows for a CSV: one per class, then ``all`` carrying the set scores."""
        extra = [f.name for f in fields(SetScores)]
        out = []
        for row in self.rows:
            item: dict[str, Any] = asdict(row)
            for key in extra:
                item[key] = ""
            if row is self.overall and self.set_scores is not None:
                item.update(asdict(self.set_scores))
            out.append({k: "" if v is None else v for k, v in item.items()})
        return out

    def write(self, path: str | os.PathLike) -> None:
        """Write the report as ``.csv`` or ``.json`` (atomically); ``ValueError`` for another
        suffix."""
        from sketchrnn.io.files import atomic_path

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".json"):
            raise ValueError(f"{path}: a report is written as .csv or .json, not {suffix!r}")
        with atomic_path(path) as tmp:
            if suffix == ".json":
                tmp.write_text(json.dumps(_finite(self.to_dict()), indent=1) + "\n", "utf-8")
                return
            rows = self.csv_rows()
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)

    def format_table(self, max_classes: int = 50) -> str:
        """A Markdown table of the rows (the first ``max_classes`` classes, then ``all``) and
        the set scores."""

        def pct(v: float | None, lo: float | None = None, hi: float | None = None) -> str:
            if v is None:
                return "n/a"
            return f"{v:.1%}" if lo is None else f"{v:.1%} [{lo:.1%}, {hi:.1%}]"

        lines = [
            "| class | drawings | top-1 Rec [95% CI] | top-5 Rec [95% CI] | confidence | "
            "p(class) | judge's first choice |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        shown = self.rows[:-1][:max_classes] + [self.overall]
        for r in shown:
            lines.append(
                f"| {r.name or '(no class)'} | {r.count} | {pct(r.top1, r.top1_low, r.top1_high)} "
                f"| {pct(r.top5, r.top5_low, r.top5_high)} | {r.confidence:.3f} | "
                f"{'n/a' if r.class_probability is None else f'{r.class_probability:.3f}'} | "
                f"{r.most_predicted} ({r.most_predicted_share:.0%}) |"
            )
        hidden = len(self.rows) - len(shown)
        if hidden > 0:
            lines.append(f"\n({hidden} more classes in the CSV / JSON output)")
        s = self.set_scores
        if s is not None:
            lines.append(
                f"\nagainst {s.real_count} real drawings ({s.generated_count} judged): Frechet "
                f"distance {s.frechet_distance:.2f}, precision {s.precision:.3f}, recall "
                f"{s.recall:.3f}, density {s.density:.3f}, coverage {s.coverage:.3f} "
                f"(k = {s.nearest_k})"
            )
        return "\n".join(lines)


def _finite(value: Any) -> Any:
    """NaN (no drawings) as null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def judge_report(
    judge: Judge,
    verdict: Judgement,
    labels: Sequence[str | None],
    real: Judgement | None = None,
    *,
    nearest_k: int = NEAREST_K,
    settings: dict[str, Any] | None = None,
) -> JudgeReport:
    """:func:`rec_rows` of ``verdict`` and, given the ``real`` drawings' verdict, the
    :func:`set_scores` of the judged drawings against them."""
    rows = rec_rows(judge, verdict, labels)
    scores = None if real is None else set_scores(real.features, verdict.features, nearest_k)
    return JudgeReport(rows=rows, set_scores=scores, settings=dict(settings or {}))
