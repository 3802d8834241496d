"""The header half of cppsim, runnable without finn-hlslib: hls4ml's ap_types headers plus the
shim headers of hw/cppsim/include compile with g++ (FINN's flags: --std=c++17, AP_INT_MAX_W,
HLS_NO_XIL_FPO_LIB), link against the folder's empty Vitis archives the way FINN's compile line
does, and compute what Python integers compute: ap_uint wrap-around, ap_int sign extension and
products, >64-bit words (ap_private's multi-word path, which FINN's wide streams use), bit
slices, hls::stream FIFO order, hls::vector arithmetic and conversions, ap_axiu and qdma_axis
fields, the `half` type, ap_int_base::sign_flag, float hls::exp/rsqrt/lrint."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from hw.cppsim import VITIS_LINK_LIBS, include_flags, missing_header_tools, toolchain_dir

pytestmark = pytest.mark.skipif(missing_header_tools() is not None, reason=f"cppsim headers: {missing_header_tools()}")

PROGRAM = r"""
#define AP_INT_MAX_W 4096
#define HLS_NO_XIL_FPO_LIB
#include <ap_int.h>
#include <hls_stream.h>
#include <hls_vector.h>
#include <ap_axi_sdata.h>
#include <hls_math.h>
#include <cstdio>
#include <iostream>
#include <type_traits>

int main() {
  static_assert(sizeof(half) == 2, "half is a 16-bit float type");
  static_assert(ap_int<5>::sign_flag && !ap_uint<5>::sign_flag, "sign_flag as Vitis has it");
  int n;
  std::cin >> n;
  for (int i = 0; i < n; i++) {
    long long a, b, r6, p, q;
    std::cin >> a >> b >> r6 >> p >> q;
    ap_uint<5> s = ap_uint<5>(a) + ap_uint<5>(b);          // wraps modulo 32
    ap_uint<6> raw = r6;
    ap_int<6> x = raw;                                       // same bits, read as signed
    ap_int<12> wide = x;                                     // sign-extended
    ap_int<7> pa = p, pb = q;
    ap_int<14> prod = pa * pb;                               // exact
    ap_int<4> narrow = pa;                                   // keeps the low 4 bits, signed
    ap_uint<3> mid = ap_uint<6>(r6).range(4, 2);             // bits 4..2
    std::cout << s.to_uint() << " " << x.to_int() << " " << wide.to_int() << " " << prod.to_int()
              << " " << narrow.to_int() << " " << mid.to_uint() << " " << int(raw[5]) << "\n";
  }
  // >64-bit words: (hi << 64 | lo) + c over 100 bits, a 37-bit field out of it, a right shift
  int m;
  std::cin >> m;
  for (int i = 0; i < m; i++) {
    unsigned long long hi, lo, c;
    std::cin >> hi >> lo >> c;
    ap_uint<100> w = (ap_uint<100>(hi) << 64) | ap_uint<100>(lo);
    ap_uint<100> sum = w + ap_uint<100>(c);
    ap_uint<37> field = sum.range(90, 54);
    ap_uint<100> shifted = sum >> 7;
    ap_int<100> neg = -ap_int<100>(sum);
    std::cout << sum.to_string(16, false) << " " << field.to_string(16, false) << " "
              << shifted.to_string(16, false) << " " << ap_uint<100>(neg).to_string(16, false) << "\n";
  }
  // hls::stream: FIFO order, size, empty
  hls::stream<ap_uint<9>> fifo("fifo");
  int k;
  std::cin >> k;
  for (int i = 0; i < k; i++) { unsigned v; std::cin >> v; fifo.write(ap_uint<9>(v)); }
  std::cout << fifo.size() << " ";
  while (!fifo.empty()) std::cout << fifo.read().to_uint() << " ";
  std::cout << "\n";
  // hls::vector of ap_int<4>: element-wise sum wraps per element; reduce_add in a wide type
  hls::vector<ap_int<4>, 5> va, vb;
  hls::vector<ap_int<12>, 5> vw;
  for (int i = 0; i < 5; i++) { int t; std::cin >> t; va[i] = t; vw[i] = t; }
  for (int i = 0; i < 5; i++) { int t; std::cin >> t; vb[i] = t; }
  hls::vector<ap_int<4>, 5> vs = va + vb;
  hls::stream<hls::vector<ap_int<4>, 5>> vfifo;
  vfifo << vs;
  hls::vector<ap_int<4>, 5> back;
  vfifo >> back;
  for (int i = 0; i < 5; i++) std::cout << back[i].to_int() << " ";
  std::cout << vw.reduce_add().to_int() << " " << (back == vs) << "\n";
  ap_axiu<24, 0, 0, 0> beat;
  beat.data = 0xABCDEF; beat.last = 1; beat.keep = -1;
  std::cout << beat.data.to_uint() << " " << beat.last.to_uint() << " " << beat.keep.to_uint() << "\n";
  // qdma_axis accessors; a vector converted to wider elements and accumulated with a narrower
  // one (finn-hlslib's pool functors), divided by a plain number, broadcast from 0
  qdma_axis<16, 0, 0, 0> q;
  q.set_data(0xBEEF); q.set_keep(-1); q.set_last(1);
  std::cout << q.get_data().to_uint() << " " << q.get_keep().to_uint() << " " << q.get_last().to_uint() << "\n";
  hls::vector<ap_uint<8>, 5> acc = 0;
  hls::vector<ap_uint<4>, 5> in4;
  for (int i = 0; i < 5; i++) in4[i] = 15 - 2 * i;
  acc += in4;
  acc += in4;
  hls::vector<ap_uint<8>, 5> avg = acc / 3ul;
  for (int i = 0; i < 5; i++) std::cout << acc[i].to_uint() << " " << avg[i].to_uint() << " ";
  std::cout << "\n";
  // the float hls::exp / rsqrt / lrint of HWSoftmax and LayerNorm
  std::printf("%.6f %.6f %ld\n", hls::exp(1.0f), hls::rsqrt(4.0f), hls::lrint(2.5f));
  return 0;
}
"""


def signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    d = tmp_path_factory.mktemp("cppsim_headers")
    root = toolchain_dir(d / "toolchain")
    (d / "check.cpp").write_text(PROGRAM)
    # the same link flags FINN's compile line passes: the empty archives must satisfy them
    libs = []
    for sub, names in VITIS_LINK_LIBS.items():
        libs += [f"-L{root / sub}"] + [f"-l{n}" for n in names]
    cmd = ["g++", "--std=c++17", "-O1", "-o", str(d / "check"), str(d / "check.cpp"), *include_flags(d / "toolchain"),
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
