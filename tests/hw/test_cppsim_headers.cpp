// The header check of tests/hw/test_cppsim_headers.py: compiled with g++ against the cppsim
// header folder (hw.cppsim.toolchain_dir), fed cases on stdin; the test compares what it prints
// with the same arithmetic done on Python integers.
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
