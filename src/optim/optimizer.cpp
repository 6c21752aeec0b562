#include "txl/optim/optimizer.h"

namespace txl {

template <typename T>
Optimizer<T>::Optimizer(std::string kind, std::vector<std::string> state_names, ParamStore<T>& params, Ops<T>& ops,
                        OptimStep hyper)
    : params_(params), ops_(ops), kind_(std::move(kind)), state_names_(std::move(state_names)), hyper_(hyper) {
  TXL_CHECK(params_.allocated(), "optimizer '{}': parameters are not allocated", kind_);
  for (size_t i = 0; i < state_names_.size(); ++i) {
    Tensor<T> t = ops_.empty({params_.total_numel()});
    ops_.fill(t.data(), t.numel(), T(0));
    state_.push_back(t);
  }
}

template <typename T>
void Optimizer<T>::step(double lr, double grad_scale) {
  OptimStep s = hyper_;
  s.lr = lr;
  s.grad_scale = grad_scale;
  s.step = steps_ + 1;
  apply(s);
  ++steps_;
}

template <typename T>
void Optimizer<T>::step_with_device_factor(double lr, const double* device_grad_scale, bool counted) {
  TXL_CHECK(device_grad_scale != nullptr, "optimizer '{}': no device gradient factor", kind_);
  OptimStep s = hyper_;
  s.lr = lr;
  s.device_grad_scale = device_grad_scale;
  s.step = steps_ + 1;
  apply(s);
  if (counted) ++steps_;
}

template <typename T>
void Optimizer<T>::save(h5::File& file) const {
  TXL_CHECK(params_.size() > 0, "optimizer '{}': no parameters to save", kind_);
  std::vector<T> host;
  for (const ParamInfo& p : params_.infos()) {
    host.resize(static_cast<size_t>(p.slice.numel));
    for (size_t i = 0; i < state_.size(); ++i) {
      ops_.download(host.data(), state_[i].data() + p.slice.offset, host.size() * sizeof(T));
      file.write<T>("/optim/" + p.name + "/" + state_names_[i], host.data(), p.shape);
    }
  }
  file.set_attr("/optim", "kind", kind_);
  file.set_attr("/optim", "steps", steps_);
}

template <typename T>
void Optimizer<T>::load(const h5::File& file) {
  if (!file.exists("/optim")) failf("{}: no optimizer state (/optim missing)", file.path());
  const std::string saved = file.attr_string("/optim", "kind");
  if (saved != kind_)
    failf("{}: the checkpoint holds '{}' optimizer state but the configuration asks for optim: {}", file.path(), saved,
          kind_);
  std::vector<T> host;
  for (const ParamInfo& p : params_.infos()) {
    host.resize(static_cast<size_t>(p.slice.numel));
    for (size_t i = 0; i < state_.size(); ++i) {
      const std::string path = "/optim/" + p.name + "/" + state_names_[i];
      if (!file.exists(path)) failf("{}: missing optimizer state '{}'", file.path(), path);
      file.read_into<T>(path, host.data(), p.shape);
      ops_.upload(state_[i].data() + p.slice.offset, host.data(), host.size() * sizeof(T));
    }
  }
  steps_ = file.attr_int("/optim", "steps");
}

namespace {

template <typename T>
class Lamb final : public Optimizer<T> {
 public:
  Lamb(ParamStore<T>& p, Ops<T>& ops, OptimStep h) : Optimizer<T>("lamb", {"exp_avg", "exp_avg_sq"}, p, ops, h) {
    slices_ = p.slices();
  }

 private:
  void apply(const OptimStep& s) override {
    auto& ps = this->params_;
    this->ops_.lamb_step(ps.flat_params().data(), ps.flat_grads().data(), this->state_[0].data(),
                         this->state_[1].data(), slices_, s);
  }
  std::vector<FlatSlice> slices_;
};

template <typename T>
class Adam final : public Optimizer<T> {
 public:
  Adam(ParamStore<T>& p, Ops<T>& ops, OptimStep h) : Optimizer<T>("adam", {"exp_avg", "exp_avg_sq"}, p, ops, h) {}

 private:
  void apply(const OptimStep& s) override {
    auto& ps = this->params_;
    this->ops_.adam_step(ps.flat_params().data(), ps.flat_grads().data(), this->state_[0].data(),
                         this->state_[1].data(), ps.total_numel(), s);
  }
};

template <typename T>
class Sgd final : public Optimizer<T> {
 public:
  Sgd(ParamStore<T>& p, Ops<T>& ops, OptimStep h) : Optimizer<T>("sgd", {"momentum_buffer"}, p, ops, h) {}

 private:
  void apply(const OptimStep& s) override {
    auto& ps = this->params_;
    this->ops_.sgd_step(ps.flat_params().data(), ps.flat_grads().data(), this->state_[0].data(), ps.total_numel(),
                        s);
  }
};

template <typename T>
class Adagrad final : public Optimizer<T> {
 public:
  Adagrad(ParamStore<T>& p, Ops<T>& ops, OptimStep h) : Optimizer<T>("adagrad", {"sum"}, p, ops, h) {
    if (h.initial_accumulator != 0.0)
      ops.fill(this->state_[0].data(), this->state_[0].numel(), static_cast<T>(h.initial_accumulator));
  }

 private:
  void apply(const OptimStep& s) override {
    auto& ps = this->params_;
    this->ops_.adagrad_step(ps.flat_params().data(), ps.flat_grads().data(), this->state_[0].data(),
                            ps.total_numel(), s);
  }
};

}  // namespace

template <typename T>
std::unique_ptr<Optimizer<T>> make_optimizer(const OptimizerSettings& settings, ParamStore<T>& params, Ops<T>& ops) {
  OptimStep h;
  h.weight_decay = settings.weight_decay;
  if (settings.kind == "lamb" || settings.kind == "jitlamb") {
    h.beta1 = 0.9, h.beta2 = 0.999, h.eps = 1e-6;
    return std::make_unique<Lamb<T>>(params, ops, h);
  }
  if (settings.kind == "adam") {
    h.beta1 = 0.9, h.beta2 = 0.999, h.eps = 1e-8;
    return std::make_unique<Adam<T>>(params, ops, h);
  }
  if (settings.kind == "sgd") {
    h.momentum = settings.momentum;
    return std::make_unique<Sgd<T>>(params, ops, h);
  }
  if (settings.kind == "adagrad") {
    h.eps = 1e-10;
    h.initial_accumulator = 0.0;
    return std::make_unique<Adagrad<T>>(params, ops, h);
  }
  failf("optim: unknown optimizer '{}' (lamb | jitlamb | adam | sgd | adagrad)", settings.kind);
}

template class Optimizer<float>;
template class Optimizer<double>;
template std::unique_ptr<Optimizer<float>> make_optimizer(const OptimizerSettings&, ParamStore<float>&, Ops<float>&);
template std::unique_ptr<Optimizer<double>> make_optimizer(const OptimizerSettings&, ParamStore<double>&,
                                                           Ops<double>&);

}  // namespace txl
