// ParamStore<T>: every trainable tensor of a model, by name (docs/model.md §8 names), living in
// one flat parameter buffer and one flat gradient buffer. The flat layout is the
// registration order; the model registers parameters in the order their gradients become
// final during backward (loss head first, embedding last), so all-reduce buckets are
// contiguous ranges of the flat gradient buffer and need no packing.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "txl/core/ops.h"

namespace txl {

// How docs/model.md §7 initialises a tensor.
enum class ParamInit {
  kWeight,           // N(0, init_std), or U(-init_range, init_range) with init: uniform
  kProjection,       // N(0, proj_init_std)
  kZero,             // biases
  kLayerNormWeight,  // N(1, init_std)
};

struct InitSpec {
  std::string init = "normal";  // "normal" | "uniform"
  double init_range = 0.1;
  double init_std = 0.02;
  double proj_init_std = 0.01;
};

struct ParamInfo {
  std::string name;
  Shape shape;
  FlatSlice slice;
  ParamInit init = ParamInit::kWeight;
};

template <typename T>
class ParamStore {
 public:
  // Registers a parameter; returns its id. Only before allocate().
  int add(const std::string& name, Shape shape, ParamInit init);
  // Allocates the flat buffers on the backend; gradients are zeroed.
  void allocate(Ops<T>& ops);
  bool allocated() const { return data_.defined(); }

  // docs/model.md §7 initialisation, deterministic in `seed` (host RNG, then upload).
  void initialize(const InitSpec& spec, uint64_t seed, Ops<T>& ops);
  // Training needs no zero_grad: the optimizer clears the gradients it consumes (ops.h).
  // Code that runs a backward pass without an optimizer step calls it before the next one.
  void zero_grad(Ops<T>& ops) { ops.fill(grad_.data(), grad_.numel(), T(0)); }

  int size() const { return static_cast<int>(infos_.size()); }
  const ParamInfo& info(int id) const { return infos_.at(static_cast<size_t>(id)); }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  int find(const std::string& name) const;  // -1 when absent
  int id(const std::string& name) const;     // throws when absent

  Tensor<T> param(int id) const { return view(data_, id); }
  Tensor<T> grad(int id) const { return view(grad_, id); }
  Tensor<T>& flat_params() { return data_; }
  Tensor<T>& flat_grads() { return grad_; }
  int64_t total_numel() const { return total_; }
  std::vector<FlatSlice> slices() const;

 private:
  Tensor<T> view(const Tensor<T>& flat, int id) const {
    const ParamInfo& p = info(id);
    return Tensor<T>::view(flat.data() + p.slice.offset, p.shape, flat.device());
  }
  std::vector<ParamInfo> infos_;
  std::unordered_map<std::string, int> by_name_;
  int64_t total_ = 0;
  Tensor<T> data_, grad_;
};

}  // namespace txl
