// Part of wrn1bit's cppsim toolchain (hw/cppsim/include/). hls4ml's ap_int.h (Apache-2.0, Xilinx's open-source
// ap_types, kept as hls4ml/ap_int.h) plus the `half` type that Vitis's ap_int.h brings along:
// FINN's cnpy.h names it when it maps C++ types to npy type codes.
#ifndef WRN1BIT_AP_INT_SHIM_H
#define WRN1BIT_AP_INT_SHIM_H
#include "hls4ml/ap_int.h"
#ifndef _HLS_HALF_DEFINED_
#define _HLS_HALF_DEFINED_
typedef _Float16 half;
#endif
#endif
