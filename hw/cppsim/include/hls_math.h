// Part of wrn1bit's cppsim toolchain (hw/cppsim/include/): hls4ml's hls_math.h (Apache-2.0,
// kept as hls4ml/hls_math.h; its functions take ap_fixed arguments) plus the float overloads of
// Vitis's hls_math.h that finn-hlslib calls: hls::exp (softmax.hpp, normalize.hpp),
// hls::rsqrt (layernorm.hpp) and hls::lrint. Plain functions, so a float argument picks them
// over hls4ml's templates.
#ifndef WRN1BIT_HLS_MATH_H
#define WRN1BIT_HLS_MATH_H
#include <cmath>
#include "hls4ml/hls_math.h"

namespace hls {
inline float exp(float x) { return std::exp(x); }
inline double exp(double x) { return std::exp(x); }
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline long lrint(float x) { return std::lrint(x); }
inline long lrint(double x) { return std::lrint(x); }
}  // namespace hls
#endif
