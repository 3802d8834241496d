"""Model definitions: the 1-bit-weight Wide Residual Network."""

from train.models.wrn import WRN, ModelConfig, build_model

__all__ = ["WRN", "ModelConfig", "build_model"]
