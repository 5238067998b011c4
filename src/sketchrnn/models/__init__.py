"""Models: sketch-rnn (VAE and decoder-only)."""

from sketchrnn.models.sketch_rnn import ModelFileError, SketchRNN, SketchRNNConfig, SketchRNNOutput

__all__ = ["SketchRNN", "SketchRNNConfig", "SketchRNNOutput", "ModelFileError"]
