#include "txl/core/param_store.h"

#include <random>

namespace txl {

template <typename T>
int ParamStore<T>::add(const std::string& name, Shape shape, ParamInit init) {
  TXL_CHECK(!allocated(), "parameter '{}' registered after allocation", name);
  TXL_CHECK(!by_name_.count(name), "parameter '{}' registered twice", name);
  ParamInfo p;
  p.name = name;
  p.shape = std::move(shape);
  p.slice = FlatSlice{total_, shape_numel(p.shape)};
  p.init = init;
  total_ += p.slice.numel;
  infos_.push_back(std::move(p));
  by_name_[name] = static_cast<int>(infos_.size()) - 1;
  return static_cast<int>(infos_.size()) - 1;
}

template <typename T>
void ParamStore<T>::allocate(Ops<T>& ops) {
  data_ = ops.empty({total_});
  grad_ = ops.empty({total_});
  ops.fill(data_.data(), total_, T(0));
  zero_grad(ops);
}

template <typename T>
void ParamStore<T>::initialize(const InitSpec& spec, uint64_t seed, Ops<T>& ops) {
  TXL_CHECK(allocated(), "initialize before allocate");
  TXL_CHECK(spec.init == "normal" || spec.init == "uniform", "init: unknown scheme '{}' (normal|uniform)",
            spec.init);
  std::mt19937_64 rng(seed);
  std::vector<T> host(static_cast<size_t>(total_));
  for (const ParamInfo& p : infos_) {
    T* out = host.data() + p.slice.offset;
    auto fill_normal = [&](double mean, double std) {
      std::normal_distribution<double> d(mean, std);
      for (int64_t i = 0; i < p.slice.numel; ++i) out[i] = static_cast<T>(d(rng));
    };
    switch (p.init) {
      case ParamInit::kWeight:
        if (spec.init == "uniform") {
          std::uniform_real_distribution<double> d(-spec.init_range, spec.init_range);
          for (int64_t i = 0; i < p.slice.numel; ++i) out[i] = static_cast<T>(d(rng));
        } else {
          fill_normal(0.0, spec.init_std);
        }
        break;
      case ParamInit::kProjection: fill_normal(0.0, spec.proj_init_std); break;
      case ParamInit::kZero:
        for (int64_t i = 0; i < p.slice.numel; ++i) out[i] = T(0);
        break;
      case ParamInit::kLayerNormWeight: fill_normal(1.0, spec.init_std); break;
    }
  }
  ops.upload(data_.data(), host.data(), host.size() * sizeof(T));
}

template <typename T>
int ParamStore<T>::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

template <typename T>
int ParamStore<T>::id(const std::string& name) const {
  const int i = find(name);
  TXL_CHECK(i >= 0, "no parameter named '{}'", name);
  return i;
}

template <typename T>
std::vector<FlatSlice> ParamStore<T>::slices() const {
  std::vector<FlatSlice> s;
  s.reserve(infos_.size());
  for (const ParamInfo& p : infos_) s.push_back(p.slice);
  return s;
}

template class ParamStore<float>;
template class ParamStore<double>;

}  // namespace txl
