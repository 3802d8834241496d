"""Graph transformations of this flow, one job each, in qonnx's Transformation form (qonnx's
own and FINN's do the rest; flows/streamline.py and flows/lowering.py put them in order).

  integer_input  the input quantizer as a scale: the accelerator takes the raw integers (NHWC)
  pooling        spatial means as integer sums, GlobalAccPool, ResNetE's pooled shortcut
  binary         +-1 conv weights required, sign activations as INT2
  integer_adds   residual adds typed as narrow as their sums
  thresholds     wide activations as a standalone Thresholding layer
  accumulators   MVAUs without activation output their accumulator as narrow as its range
  float_tail     the float nodes after the last integer tensor cut off for the host
  checks         one LoweringError naming the first node that is not allowed
"""
