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


def wrapper_module(header: str, top: str, inputs: list[tuple[int, int, str]],
                   outputs: list[tuple[int, str]], body: str) -> str:
    """The text of ``<top>.v``: ``header``, then module ``top`` with ap_clk, ap_rst_n, an AXI
    stream ``in<i>_V`` per entry (padded width, used bits, note) of ``inputs``, one ``out<i>_V``
    per entry (padded width, note) of ``outputs``, and ``body`` (wires, instances, assigns)."""
    ports = ["    input  wire ap_clk,", "    input  wire ap_rst_n,"]
    for i, (width, used, note) in enumerate(inputs):
        ports += [tdata_input(f"in{i}_V_TDATA", width, used, note),
                  f"    input  wire in{i}_V_TVALID,", f"    output wire in{i}_V_TREADY,"]
    for i, (width, note) in enumerate(outputs):
        ports += [f"    output wire [{width - 1}:0] out{i}_V_TDATA," + (f"  // {note}" if note else ""),
                  f"    output wire out{i}_V_TVALID,", f"    input  wire out{i}_V_TREADY,"]
    ports[-1] = ports[-1].rstrip(",")
    return header + f"module {top} (\n" + "\n".join(ports) + "\n);\n" + body.rstrip("\n") + "\nendmodule\n"
