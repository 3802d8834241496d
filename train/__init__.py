"""Stage 1 of the pipe: train 1-bit-weight WRNs with Brevitas and export them to QONNX."""
