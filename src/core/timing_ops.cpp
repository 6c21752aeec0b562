#include "txl/core/timing_ops.h"

#include <chrono>
#include <string>

#include <fmt/format.h>

namespace txl {
namespace {

// "NT 192x1536x512", with " x8" for a batch of 8: the profile's name of a GEMM shape.
std::string gemm_shape(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, int64_t batch = 1) {
  std::string s = fmt::format("{}{} {}x{}x{}", ta == Trans::kYes ? 'T' : 'N', tb == Trans::kYes ? 'T' : 'N', m, n, k);
  if (batch != 1) s += fmt::format(" x{}", batch);
  return s;
}

}  // namespace

template <typename T>
void TimingOps<T>::timed(const char* op, const std::function<void()>& call) {
  const auto t0 = std::chrono::steady_clock::now();
  call();
  if (this->inner().device() == Device::kCUDA) this->inner().synchronize();
  const auto t1 = std::chrono::steady_clock::now();
  OpTime& t = times_[{phase_, op}];
  ++t.calls;
  t.seconds += std::chrono::duration<double>(t1 - t0).count();
  t.flops += pending_flops_;
  if (!pending_shape_.empty() && phase_ != "untimed") {  // the benches' untimed ops
    OpTime& g = shapes_[pending_shape_];
    ++g.calls;
    g.seconds += std::chrono::duration<double>(t1 - t0).count();
    g.flops += pending_flops_;
  }
  pending_shape_.clear();
  pending_flops_ = 0;
}

template <typename T>
void TimingOps<T>::host_op(const char* op, const std::function<void()>& call) {
  timed(op, call);
}

template <typename T>
void TimingOps<T>::device_op(const char* op, std::function<void()> call) {
  timed(op, call);
}

template <typename T>
void TimingOps<T>::gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                        const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  pending_flops_ = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  pending_shape_ = gemm_shape(ta, tb, m, n, k);
  ForwardingOps<T>::gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
void TimingOps<T>::gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A,
                                        int64_t lda, int64_t strideA, const T* B, int64_t ldb, int64_t strideB,
                                        T beta, T* C, int64_t ldc, int64_t strideC, int64_t batch) {
  pending_flops_ = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) *
                   static_cast<double>(batch);
  pending_shape_ = gemm_shape(ta, tb, m, n, k, batch);
  ForwardingOps<T>::gemm_strided_batched(ta, tb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc,
                                         strideC, batch);
}

template <typename T>
std::map<std::string, OpTime> TimingOps<T>::by_op() const {
  std::map<std::string, OpTime> out;
  for (const auto& [key, t] : times_) {
    OpTime& o = out[key.second];
    o.calls += t.calls;
    o.seconds += t.seconds;
    o.flops += t.flops;
  }
  return out;
}

template <typename T>
double TimingOps<T>::total_seconds() const {
  double s = 0;
  for (const auto& kv : times_) s += kv.second.seconds;
  return s;
}

template class TimingOps<float>;
template class TimingOps<double>;

}  // namespace txl
