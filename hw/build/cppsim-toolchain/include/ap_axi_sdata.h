// Part of wrn1bit's cppsim toolchain (hw/cppsim/include/): the AXI-stream word types of Vitis's ap_axi_sdata.h for C
// simulation with g++ (FINN's TLastMarker names ap_axiu; finn-hlslib's streamtools.h names
// qdma_axis): data plus the side channels, a side channel of width 0 kept as one bit, as Vitis
// does.
#ifndef WRN1BIT_AP_AXI_SDATA_H
#define WRN1BIT_AP_AXI_SDATA_H
#include <cstddef>
#include "ap_int.h"

// one AXI-stream beat with its side channels; ap_axis (signed data) and ap_axiu (unsigned)
template <typename Data, int D, int U, int TI, int TD>
struct wrn1bit_axis_beat {
  Data data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<(U > 0) ? U : 1> user;
  ap_uint<1> last;
  ap_uint<(TI > 0) ? TI : 1> id;
  ap_uint<(TD > 0) ? TD : 1> dest;
};

template <int D, int U, int TI, int TD>
struct ap_axis : wrn1bit_axis_beat<ap_int<D>, D, U, TI, TD> {};

template <int D, int U, int TI, int TD>
struct ap_axiu : wrn1bit_axis_beat<ap_uint<D>, D, U, TI, TD> {};

// the QDMA stream word (data, keep, last) with Vitis's accessors
template <int D, int U, int TI, int TD>
struct qdma_axis {
  ap_uint<D> data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<1> last;
  ap_uint<D> get_data() const { return data; }
  void set_data(const ap_uint<D> &d) { data = d; }
  ap_uint<(D + 7) / 8> get_keep() const { return keep; }
  void set_keep(const ap_uint<(D + 7) / 8> &k) { keep = k; }
  ap_uint<1> get_last() const { return last; }
  void set_last(const ap_uint<1> &l) { last = l; }
};

namespace hls {
template <typename T, std::size_t U = 0, std::size_t TI = 0, std::size_t TD = 0>
struct axis {
  T data;
  ap_uint<sizeof(T)> keep;
  ap_uint<sizeof(T)> strb;
  ap_uint<(U > 0) ? U : 1> user;
  ap_uint<1> last;
  ap_uint<(TI > 0) ? TI : 1> id;
  ap_uint<(TD > 0) ? TD : 1> dest;
};
}  // namespace hls
#endif
