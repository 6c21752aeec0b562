// TimingOps<T>: a per-op wall-clock profile of whatever runs on the backend it wraps.
// Every op of ops.h reaches one of ForwardingOps' two hooks; this decorator times each
// call and adds it to (phase, op name), the phase being set by the caller ("forward",
// "backward", ...). On a CUDA backend it synchronises after every op, so each op's time is
// its own (and the step is slower than without the profile); the CPU backend's ops finish
// before they return. GEMM FLOPs are counted here (2·m·n·k per product); bytes come from
// the traffic model (counting_ops.h), which bench/cpu_fwdbwd joins by op name.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "txl/core/forwarding_ops.h"

namespace txl {

struct OpTime {
  int64_t calls = 0;
  double seconds = 0;
  double flops = 0;  // GEMMs only
};

template <typename T>
class TimingOps final : public ForwardingOps<T> {
 public:
  using PhaseOp = std::pair<std::string, std::string>;
  explicit TimingOps(std::unique_ptr<Ops<T>> inner) : ForwardingOps<T>(std::move(inner)) {}

  void set_phase(std::string phase) { phase_ = std::move(phase); }
  void reset() {
    times_.clear();
    shapes_.clear();
  }
  const std::map<PhaseOp, OpTime>& by_phase_op() const { return times_; }
  // GEMMs by shape, e.g. "NT 192x1536x512" or "TN 64x64x384 x8" (batched), summed over
  // phases: where the GEMM time goes.
  const std::map<std::string, OpTime>& gemm_shapes() const { return shapes_; }
  // Summed over phases.
  std::map<std::string, OpTime> by_op() const;
  double total_seconds() const;

  void gemm(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
            int64_t ldb, T beta, T* C, int64_t ldc) override;
  void gemm_strided_batched(Trans ta, Trans tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                            int64_t strideA, const T* B, int64_t ldb, int64_t strideB, T beta, T* C, int64_t ldc,
                            int64_t strideC, int64_t batch) override;

 protected:
  void host_op(const char* op, const std::function<void()>& call) override;
  void device_op(const char* op, std::function<void()> call) override;

 private:
  void timed(const char* op, const std::function<void()>& call);
  std::string phase_ = "step";
  std::map<PhaseOp, OpTime> times_;
  std::map<std::string, OpTime> shapes_;
  double pending_flops_ = 0;
  std::string pending_shape_;
};

}  // namespace txl
