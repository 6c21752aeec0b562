// Optimizers over a ParamStore's flat buffers, built on the fused Ops<T> steps
// (lamb_step, adam_step, sgd_step, adagrad_step). Each keeps its state as flat buffers
// parallel to the parameters (exp_avg, exp_avg_sq, momentum_buffer, sum) and saves it
// per parameter as /optim/<parameter name>/<state name> in a checkpoint.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "txl/core/param_store.h"
#include "txl/io/h5file.h"

namespace txl {

struct OptimizerSettings {
  std::string kind = "lamb";  // lamb (jitlamb) | adam | sgd | adagrad
  double weight_decay = 0.0;
  double momentum = 0.0;      // sgd
};

template <typename T>
class Optimizer {
 public:
  Optimizer(std::string kind, std::vector<std::string> state_names, ParamStore<T>& params, Ops<T>& ops,
            OptimStep hyper);
  virtual ~Optimizer() = default;

  const std::string& kind() const { return kind_; }
  const std::vector<std::string>& state_names() const { return state_names_; }
  Tensor<T>& state(size_t i) { return state_.at(i); }
  // Optimizer steps taken so far (Adam's bias correction uses steps() + 1 next).
  int64_t steps() const { return steps_; }

  // One update of every parameter: gradients are multiplied by `grad_scale` first
  // (gradient averaging, clipping and loss-scale removal folded into one factor). The
  // step consumes the gradients: they are zero afterwards (ready for the next backward).
  void step(double lr, double grad_scale);
  // The same with the factor read on the device from `device_grad_scale` (a StepScalars
  // entry) when the update runs; a factor that is not finite leaves parameters and state
  // unchanged (the gradients are still cleared). `counted`: false when the caller knows
  // the step is skipped (fp16 overflow), so steps() (Adam's bias correction) stays put.
  void step_with_device_factor(double lr, const double* device_grad_scale, bool counted = true);

  // Writes the state under /optim (attributes: kind, steps).
  void save(h5::File& file) const;
  // Reads state saved by save(); refuses another optimizer kind or other parameters.
  void load(const h5::File& file);

 protected:
  virtual void apply(const OptimStep& s) = 0;
  ParamStore<T>& params_;
  Ops<T>& ops_;
  std::vector<Tensor<T>> state_;  // flat, params_.total_numel() each

 private:
  std::string kind_;
  std::vector<std::string> state_names_;
  OptimStep hyper_;
  int64_t steps_ = 0;
};

// The optimizer of `settings.kind` with the recipe's constants (LAMB: betas 0.9/0.999,
// eps 1e-6; Adam: 0.9/0.999, eps 1e-8; Adagrad: eps 1e-10, initial accumulator 0).
template <typename T>
std::unique_ptr<Optimizer<T>> make_optimizer(const OptimizerSettings& settings, ParamStore<T>& params, Ops<T>& ops);

}  // namespace txl
