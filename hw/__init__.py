"""Stage 4 of the pipe: this project's RTL for the layers FINN has no open RTL for, a stitcher
for whole dataflow partitions, and a Verilator harness that checks them bit-exactly."""
