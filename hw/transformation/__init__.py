"""Graph transformations of the hardware stage (qonnx style: one small class, one job)."""

from hw.transformation.use_project_rtl import UseProjectRTL

__all__ = ["UseProjectRTL"]
