"""Building blocks: recurrent cells, the mixture-density head and decoder, sequence and image
encoders, the pixel loss."""

from sketchrnn.nn.cells import (
    CELL_TYPES,
    LSTM,
    HyperLSTM,
    LayerNormLSTM,
    fast_fp32_matmul,
    make_cell,
    set_loop_compiler,
)
from sketchrnn.nn.decoder import MixtureDecoder
from sketchrnn.nn.encoders import BiLSTMEncoder, Conv4, ImageEncoder, ResNet12
from sketchrnn.nn.mixture import (
    MixtureParams,
    mixture_params,
    offset_log_likelihood,
    pen_log_likelihood,
    reconstruction_losses,
    sample,
)
from sketchrnn.nn.pixel_loss import (
    curriculum_alpha,
    gaussian_blur,
    pixel_loss,
    sketchembednet_loss,
)

__all__ = [
    "CELL_TYPES",
    "LSTM",
    "LayerNormLSTM",
    "HyperLSTM",
    "make_cell",
    "set_loop_compiler",
    "fast_fp32_matmul",
    "BiLSTMEncoder",
    "Conv4",
    "ResNet12",
    "ImageEncoder",
    "MixtureDecoder",
    "MixtureParams",
    "mixture_params",
    "offset_log_likelihood",
    "pen_log_likelihood",
    "reconstruction_losses",
    "sample",
    "pixel_loss",
    "gaussian_blur",
    "curriculum_alpha",
    "sketchembednet_loss",
]
