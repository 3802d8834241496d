"""Stage 2 of the pipe: drive FINN (finn-plus) from a trained QONNX model to a board."""
