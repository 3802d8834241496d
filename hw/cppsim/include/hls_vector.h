// Part of wrn1bit's cppsim toolchain (hw/cppsim/include/): hls::vector for C simulation with g++, the part of Vitis's
// interface that FINN's generated test benches and finn-hlslib use: N elements of T, indexing,
// broadcast and list construction, conversion from a vector of another element type (and
// broadcast of a plain number), as Vitis's converts; element-wise arithmetic / bitwise / shift
// operators with a vector or a scalar, equality over all elements, reductions.
#ifndef WRN1BIT_HLS_VECTOR_H
#define WRN1BIT_HLS_VECTOR_H
#include <array>
#include <cstddef>
#include <initializer_list>
#include <ostream>
#include <type_traits>

namespace hls {

template <typename T, std::size_t N>
class vector {
  static_assert(N > 0, "hls::vector needs at least one element");
  std::array<T, N> data_;

 public:
  typedef T value_type;
  vector() : data_() {}
  vector(const T &x) { data_.fill(x); }
  vector(std::initializer_list<T> list) : data_() {
    std::size_t i = 0;
    for (const T &x : list) {
      if (i == N) break;
      data_[i++] = x;
    }
  }
  vector(const std::array<T, N> &a) : data_(a) {}
  // element-wise conversion (finn-hlslib's pool functors add a vector of inputs into a vector
  // of wider accumulators) and broadcast of a plain number (``return 0;`` for a vector)
  template <typename U>
  vector(const vector<U, N> &other) {
    for (std::size_t i = 0; i < N; i++) data_[i] = T(other[i]);
  }
  template <typename U, typename = typename std::enable_if<std::is_arithmetic<U>::value>::type>
  vector(U x) {
    data_.fill(T(x));
  }
  static constexpr std::size_t size() { return N; }
  T &operator[](std::size_t i) { return data_[i]; }
  const T &operator[](std::size_t i) const { return data_[i]; }
  operator std::array<T, N>() const { return data_; }
  T *begin() { return data_.data(); }
  T *end() { return data_.data() + N; }
  const T *begin() const { return data_.data(); }
  const T *end() const { return data_.data() + N; }

#define WRN1BIT_VEC_OP(OP)                                                   \
  vector &operator OP##=(const vector &r) {                                  \
    for (std::size_t i = 0; i < N; i++) data_[i] OP## = r.data_[i];          \
    return *this;                                                            \
  }                                                                          \
  vector &operator OP##=(const T &r) {                                       \
    for (std::size_t i = 0; i < N; i++) data_[i] OP## = r;                   \
    return *this;                                                            \
  }                                                                          \
  friend vector operator OP(vector l, const vector &r) { return l OP## = r; } \
  friend vector operator OP(vector l, const T &r) { return l OP## = r; }      \
  friend vector operator OP(const T &l, const vector &r) { return vector(l) OP## = r; } \
  /* a plain number of another type: exact match, so not ambiguous with the two above */ \
  template <typename U, typename = typename std::enable_if<std::is_arithmetic<U>::value>::type> \
  friend vector operator OP(vector l, U r) { return l OP## = T(r); }
  WRN1BIT_VEC_OP(+)
  WRN1BIT_VEC_OP(-)
  WRN1BIT_VEC_OP(*)
  WRN1BIT_VEC_OP(/)
  WRN1BIT_VEC_OP(%)
  WRN1BIT_VEC_OP(&)
  WRN1BIT_VEC_OP(|)
  WRN1BIT_VEC_OP(^)
#undef WRN1BIT_VEC_OP

  vector &operator<<=(int s) {
    for (std::size_t i = 0; i < N; i++) data_[i] <<= s;
    return *this;
  }
  vector &operator>>=(int s) {
    for (std::size_t i = 0; i < N; i++) data_[i] >>= s;
    return *this;
  }
  friend vector operator<<(vector l, int s) { return l <<= s; }
  friend vector operator>>(vector l, int s) { return l >>= s; }
  vector operator-() const {
    vector r;
    for (std::size_t i = 0; i < N; i++) r.data_[i] = -data_[i];
    return r;
  }
  vector operator~() const {
    vector r;
    for (std::size_t i = 0; i < N; i++) r.data_[i] = ~data_[i];
    return r;
  }
  friend bool operator==(const vector &l, const vector &r) {
    for (std::size_t i = 0; i < N; i++)
      if (!(l.data_[i] == r.data_[i])) return false;
    return true;
  }
  friend bool operator!=(const vector &l, const vector &r) { return !(l == r); }

  T reduce_add() const {
    T r = data_[0];
    for (std::size_t i = 1; i < N; i++) r += data_[i];
    return r;
  }
  T reduce_mult() const {
    T r = data_[0];
    for (std::size_t i = 1; i < N; i++) r *= data_[i];
    return r;
  }
  T reduce_max() const {
    T r = data_[0];
    for (std::size_t i = 1; i < N; i++)
      if (r < data_[i]) r = data_[i];
    return r;
  }
  T reduce_min() const {
    T r = data_[0];
    for (std::size_t i = 1; i < N; i++)
      if (data_[i] < r) r = data_[i];
    return r;
  }
  friend std::ostream &operator<<(std::ostream &os, const vector &v) {
    os << "{";
    for (std::size_t i = 0; i < N; i++) os << (i ? ", " : "") << v.data_[i];
    return os << "}";
  }
};

}  // namespace hls
#endif
