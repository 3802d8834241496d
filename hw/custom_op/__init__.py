"""This project's RTL layers as FINN custom ops.

Importing this package registers every layer (hw/custom_op/registry.py) in FINN's RTL op
registry, so that FINN's own transformations (code generation, estimates, stitched IP) treat
them like any finn-rtllib layer.
"""

from hw.custom_op import (  # noqa: F401  (each layer registers itself on import)
    duplicatestreams_rtl,
    elementwiseaddstreams_rtl,
    globalaccpool_rtl,
    labelselect_rtl,
    maxpool_rtl,
    mvau_bipolar_rtl,
    streamwidthconverter_rtl,
    thresholdtable_rtl,
)
from hw.custom_op.registry import PROJECT_RTL_OPS  # noqa: F401  (the package's interface)
