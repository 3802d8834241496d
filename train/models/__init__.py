"""Model definitions: the 1-bit-weight Wide Residual Network and Bethge et al.'s ResNetE and
BinaryDenseNet, selected by ``ModelConfig.arch``."""

from train.models.densenet import BinaryDenseNet
from train.models.resnete import ResNetE
from train.models.wrn import WRN, ModelConfig, build_model

__all__ = ["WRN", "ResNetE", "BinaryDenseNet", "ModelConfig", "build_model"]
