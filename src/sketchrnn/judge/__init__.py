"""The judge of drawings: a Quick, Draw! classifier (DoodleNet) scoring what models draw.

:mod:`~sketchrnn.judge.classifier` (:func:`load_judge`, :class:`Judge`) says what drawings
look like; :mod:`~sketchrnn.judge.scores` turns that into per-class recognisability (Rec,
top-1 / top-5 with confidence intervals), the judge's confidence, and, against real drawings,
the Frechet distance in the judge's features and precision / recall;
:mod:`~sketchrnn.judge.files` fetches the judge by name.
"""

from sketchrnn.judge.classifier import Judge, JudgeInputError, Judgement, class_key, load_judge

__all__ = ["Judge", "Judgement", "JudgeInputError", "class_key", "load_judge"]
