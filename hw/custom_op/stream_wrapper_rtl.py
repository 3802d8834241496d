"""Pieces of the FINN-interface wrappers (``<top>.v``) that this project's RTL layers share:
TDATA ports are padded to whole bytes (FINN's get_*stream_width_padded), the library modules
see only the element bits."""

from __future__ import annotations


def tdata_input(name: str, width: int, used: int, note: str = "") -> str:
    """Port declaration of an input TDATA of ``width`` bits whose low ``used`` bits carry data."""
    comments = [note] if note else []
    if width != used:
        comments.append(f"bits {width - 1}:{used} are byte padding")
    decl = f"    input  wire [{width - 1}:0] {name}," + (f"  // {'; '.join(comments)}" if comments else "")
    if width == used:
        return decl
    # the padding bits carry nothing: keep Verilator's lint quiet about them
    return f"    /* verilator lint_off UNUSEDSIGNAL */\n{decl}\n    /* verilator lint_on UNUSEDSIGNAL */"


def tdata_output(name: str, width: int, used: int, source: str) -> str:
    """Assignment of an output TDATA from ``source`` (``used`` bits), zero in the padding."""
    value = source if width == used else f"{{{width - used}'b0, {source}}}"
    return f"    assign {name} = {value};"


def core_instance(module: str, params: dict[str, int], ports: dict[str, str]) -> str:
    """The library ``module`` instantiated as ``core``: named parameters, ap_clk/ap_rst_n, then
    ``ports`` (library port -> wrapper signal)."""
    conns = {"ap_clk": "ap_clk", "ap_rst_n": "ap_rst_n", **ports}
    return (f"    {module} #(\n" + ",\n".join(f"        .{k}({v})" for k, v in params.items())
            + "\n    ) core (\n" + ",\n".join(f"        .{k}({v})" for k, v in conns.items()) + "\n    );")
