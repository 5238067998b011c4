"""sketchrnn: generative models of vector sketches (sketch-rnn, SketchEmbedNet)."""

__version__ = "0.1.0"
