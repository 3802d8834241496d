"""The header half of cppsim, runnable without finn-hlslib: hls4ml's ap_types headers plus the
shim headers of hw/cppsim/include compile with g++ (FINN's flags: --std=c++17, AP_INT_MAX_W,
HLS_NO_XIL_FPO_LIB), link against the folder's empty Vitis archives the way FINN's compile line
does, and compute what Python integers compute: ap_uint wrap-around, ap_int sign extension and
products, >64-bit words (ap_private's multi-word path, which FINN's wide streams use), bit
slices, hls::stream FIFO order, hls::vector arithmetic and conversions, ap_axiu and qdma_axis
fields, the `half` type, ap_int_base::sign_flag, float hls::exp/rsqrt/lrint."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from hw.cppsim import VITIS_LINK_LIBS, include_flags, missing_header_tools, toolchain_dir

pytestmark = pytest.mark.skipif(missing_header_tools() is not None, reason=f"cppsim headers: {missing_header_tools()}")

# the C++ program, a real file beside this one (compiled as it is, so that a compiler error
# points at its own line numbers)
PROGRAM = Path(__file__).with_suffix(".cpp")


def signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    d = tmp_path_factory.mktemp("cppsim_headers")
    root = toolchain_dir(d / "toolchain")
    # the same link flags FINN's compile line passes: the empty archives must satisfy them
    libs = []
    for sub, names in VITIS_LINK_LIBS.items():
        libs += [f"-L{root / sub}"] + [f"-l{n}" for n in names]
    cmd = ["g++", "--std=c++17", "-O1", "-o", str(d / "check"), str(PROGRAM), *include_flags(d / "toolchain"),
           *libs]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return d / "check"


def test_headers_compute_like_python_integers(program):
    rng = np.random.default_rng(7)
    n = 400
    a, b = rng.integers(0, 32, n), rng.integers(0, 32, n)
    r6 = rng.integers(0, 64, n)
    p, q = rng.integers(-64, 64, n), rng.integers(-64, 64, n)
    a[:2], b[:2], p[:2], q[:2], r6[:2] = [31, 0], [31, 0], [-64, 63], [-64, 63], [32, 31]  # extremes
    m = 50
    hi = [int(v) for v in rng.integers(0, 2**36, m)]
    lo = [int(v) for v in rng.integers(0, 2**63, m, dtype=np.uint64)]
    lo = [v | (1 << 63) if i % 2 else v for i, v in enumerate(lo)]  # carries out of the low word
    c = [int(v) for v in rng.integers(0, 2**63, m, dtype=np.uint64)]
    hi[0], lo[0], c[0] = 2**36 - 1, 2**64 - 1, 1  # 2**100 - 1 + 1 wraps to 0
    k = 37
    fifo = [int(v) for v in rng.integers(0, 512, k)]
    va, vb = [7, -8, 3, -1, 5], [1, -1, 6, -8, -6]

    lines = [str(n)] + [f"{a[i]} {b[i]} {r6[i]} {p[i]} {q[i]}" for i in range(n)]
    lines += [str(m)] + [f"{hi[i]} {lo[i]} {c[i]}" for i in range(m)]
    lines += [str(k), " ".join(map(str, fifo)), " ".join(map(str, va)), " ".join(map(str, vb))]
    r = subprocess.run([str(program)], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert len(out) == n + m + 6, out[-5:]

    for i in range(n):
        got = [int(t) for t in out[i].split()]
        x = signed(int(r6[i]), 6)
        want = [(int(a[i]) + int(b[i])) % 32, x, x, int(p[i]) * int(q[i]), signed(int(p[i]), 4),
                (int(r6[i]) >> 2) & 7, int(r6[i]) >> 5]
        assert got == want, f"scalar case {i} ({a[i]}, {b[i]}, {r6[i]}, {p[i]}, {q[i]}): C++ {got} vs Python {want}"

    mask = (1 << 100) - 1
    for i in range(m):
        got = [int(t, 16) for t in out[n + i].split()]
        s = (((hi[i] << 64) | lo[i]) + c[i]) & mask
        want = [s, (s >> 54) & ((1 << 37) - 1), s >> 7, (-s) & mask]
        assert got == want, f"wide case {i}: C++ {[hex(v) for v in got]} vs Python {[hex(v) for v in want]}"
    assert int(out[n].split()[0], 16) == 0  # case 0: 2**100 - 1 + 1 wraps to 0

    got = [int(t) for t in out[n + m].split()]
    assert got == [k] + fifo, "hls::stream: size then values in write order"
    got = [int(t) for t in out[n + m + 1].split()]
    assert got == [signed(x + y, 4) for x, y in zip(va, vb)] + [sum(va), 1]
    assert [int(t) for t in out[n + m + 2].split()] == [0xABCDEF, 1, 7]
    assert [int(t) for t in out[n + m + 3].split()] == [0xBEEF, 3, 1]
    acc = [2 * (15 - 2 * i) for i in range(5)]
    assert [int(t) for t in out[n + m + 4].split()] == [v for a in acc for v in (a, a // 3)]
    e, r, li = out[n + m + 5].split()
    assert (e, r, li) == (f"{np.exp(np.float32(1)):.6f}", "0.500000", "2")  # lrint rounds half to even


def test_toolchain_folder_layout(tmp_path):
    root = toolchain_dir(tmp_path / "tc")
    inc = root / "include"
    for h in ("ap_int.h", "ap_fixed.h", "hls_stream.h", "hls_vector.h", "ap_axi_sdata.h", "hls_math.h",
              "hls4ml/ap_int.h", "hls4ml/hls_math.h", "etc/ap_private.h"):
        assert (inc / h).is_file(), h
    assert "hls4ml/ap_int.h" in (inc / "ap_int.h").read_text()
    for sub, names in VITIS_LINK_LIBS.items():
        for name in names:
            assert (root / sub / f"lib{name}.a").read_bytes() == b"!<arch>\n"
    # written once: a second call keeps the folder (same fingerprint)
    stamp = (root / ".fingerprint").stat().st_mtime_ns
    assert toolchain_dir(tmp_path / "tc") == root and (root / ".fingerprint").stat().st_mtime_ns == stamp
