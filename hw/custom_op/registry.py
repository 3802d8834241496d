"""Where this project's RTL layers register: FINN's RTL op registry (domain
``finn.custom_op.fpgadataflow.rtl``), so that FINN's own transformations (code generation,
estimates, stitched IP) treat them like any finn-rtllib layer, and PROJECT_RTL_OPS, so that
the flow knows which layers are this project's."""

from finn.custom_op.fpgadataflow.rtl import custom_op as _finn_rtl_ops

PROJECT_RTL_OPS: dict[str, type] = {}


def register(cls):
    """Class decorator: make ``cls`` resolvable by qonnx's getCustomOp in FINN's RTL domain."""
    if cls.__name__ in _finn_rtl_ops and _finn_rtl_ops[cls.__name__] is not cls:
        raise RuntimeError(f"{cls.__name__} is already a FINN RTL op; pick another name")
    _finn_rtl_ops[cls.__name__] = cls
    PROJECT_RTL_OPS[cls.__name__] = cls
    return cls
