"""Building blocks: recurrent cells, the mixture-density head, sequence encoders."""

from sketchrnn.nn.cells import (
    CELL_TYPES,
    LSTM,
    HyperLSTM,
    LayerNormLSTM,
    make_cell,
    set_loop_compiler,
)
from sketchrnn.nn.encoders import BiLSTMEncoder
from sketchrnn.nn.mixture import (
    MixtureParams,
    mixture_params,
    offset_log_likelihood,
    pen_log_likelihood,
    sample,
)

__all__ = [
    "CELL_TYPES",
    "LSTM",
    "LayerNormLSTM",
    "HyperLSTM",
    "make_cell",
    "set_loop_compiler",
    "BiLSTMEncoder",
    "MixtureParams",
    "mixture_params",
    "offset_log_likelihood",
    "pen_log_likelihood",
    "sample",
]
