#include "txl/train/step_plan.h"

#include <algorithm>
#include <cmath>

#include "txl/core/error.h"
#include "txl/model/transformer_xl.h"
#include "txl/optim/optimizer.h"
#include "txl/optim/update_step.h"

namespace txl {

std::vector<int32_t> zipf_like_tokens(int64_t n, int64_t n_token, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, std::log(static_cast<double>(n_token)));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids)
    id = static_cast<int32_t>(std::min<int64_t>(n_token - 1, static_cast<int64_t>(std::exp(u(rng))) - 1));
  return ids;
}

namespace {

constexpr double kCublasWorkspace = 32.0 * 1024 * 1024;  // CudaOptions::cublas_workspace_bytes (cuda_ops.h)

// "layers.3.dec_attn.qkv_net.weight" -> "layer 3"; the loss head and the embedding by prefix.
std::string region_name(const std::string& param) {
  if (param.rfind("layers.", 0) == 0) return "layer " + param.substr(7, param.find('.', 7) - 7);
  if (param.rfind("crit.", 0) == 0) return "loss head";
  if (param.rfind("word_emb.", 0) == 0) return "embedding";
  return "";
}

// Embedding, layers in order, loss head, then the rest.
std::pair<int64_t, std::string> region_order(const std::string& region) {
  if (region == "embedding") return {-1, ""};
  if (region.rfind("layer ", 0) == 0) return {std::stoll(region.substr(6)), ""};
  if (region == "loss head") return {int64_t{1} << 40, ""};
  return {int64_t{1} << 41, region};
}

double category(const std::map<std::string, size_t>& at_peak, const std::string& name) {
  auto it = at_peak.find(name);
  return it == at_peak.end() ? 0.0 : static_cast<double>(it->second);
}

std::string gb(double bytes) { return fmt::format("{:.2f}", bytes * 1e-9); }

}  // namespace

StepPlan plan_training_step(const StepPlanRequest& rq) {
  TXL_CHECK(rq.chunk_batch > 0 && rq.batch_chunk > 0, "plan: batch {} x batch_chunk {} must be positive",
            rq.chunk_batch, rq.batch_chunk);
  CountingOps<float> ops(make_cpu_ops<float>(), rq.precision, rq.storage);
  ShapeOnlyAllocator& alloc = ops.shape_allocator();
  const ModelConfig& cfg = rq.model;

  alloc.set_category("parameters and gradients");
  TransformerXL<float> model(cfg, ops);  // parameters are never initialised: nothing is computed
  ParamStore<float>& store = model.params();
  int last_crit = -1, r_r_bias = -1;
  for (int id = 0; id < store.size(); ++id) {
    const std::string region = region_name(store.info(id).name);
    if (region == "loss head") last_crit = id;
    if (store.info(id).name == "r_r_bias") r_r_bias = id;
    if (region.empty()) continue;
    ops.add_region(store.param(id).data(), store.param(id).bytes(), region);
    ops.add_region(store.grad(id).data(), store.grad(id).bytes(), region, true);
  }
  alloc.set_category("optimizer state");
  auto optimizer = make_optimizer<float>({rq.optim, 0.0, 0.0}, store, ops);
  model.set_lengths(cfg.tgt_len, cfg.ext_len, cfg.mem_len, cfg.same_length, cfg.clamp_len);

  alloc.set_category("activations and memories");
  const int64_t len = cfg.tgt_len, cb = rq.chunk_batch, chunks = rq.batch_chunk;
  std::vector<Memory<float>> memories(static_cast<size_t>(chunks));
  Tensor<float> dnll = ops.empty({len, cb});
  Tensor<double> chunk_loss_sums({chunks}, ops.allocator());
  DeviceStepScalars scalars(ops);
  LossScalerOptions scaling;
  scaling.enabled = rq.precision == PlanPrecision::kFp16;
  DynamicLossScaler scaler(scaling);
  std::mt19937_64 rng(7);
  // Steps until every chunk's memory holds mem_len rows, then the counted step. As in
  // Trainer::train_step: no zero_grad (the optimizer clears the gradients it consumes),
  // the loss and the update's scalars stay on the device.
  const int64_t warmup = cfg.mem_len > 0 ? (cfg.mem_len + len - 1) / len : 0;
  for (int64_t s = 0; s <= warmup; ++s) {
    if (s == warmup) ops.reset_counts();
    ops.set_phase("forward");
    ops.pin_region("loss head");  // the loss gradient
    ops.fill(dnll.data(), dnll.numel(), 1.0f);
    ops.unpin_region();
    StepContext ctx;
    ctx.train = true;
    ctx.seed = 1111;
    ctx.step = static_cast<uint64_t>(s + 1);
    ctx.batch_global = cb * chunks;
    for (int64_t c = 0; c < chunks; ++c) {
      const auto data = zipf_like_tokens(len * cb, cfg.n_token, rng);
      const auto target = zipf_like_tokens(len * cb, cfg.n_token, rng);
      ctx.batch_offset = c * cb;
      Memory<float>& mem = memories[static_cast<size_t>(c)];
      ops.set_phase("forward");
      ops.pin_region("embedding");
      model.forward_embed(data.data(), target.data(), len, cb, mem, ctx);
      ops.unpin_region();
      model.forward_layers(mem);
      ops.pin_region("loss head");
      const Tensor<float>& nll = model.forward_loss();
      ops.sum_to_device(nll.data(), nll.numel(), chunk_loss_sums.data() + c);
      ops.set_phase("backward");
      model.backward(dnll, [&](int id) {
        if (id == last_crit) ops.unpin_region();
        if (id == r_r_bias) ops.pin_region("embedding");
      });
    }
    ops.set_phase("optimizer");
    ops.pin_region(CountingOps<float>::spanning);
    StepLossArgs la;
    la.chunks = chunks;
    la.tokens_per_chunk = len * cb;
    la.step = s + 1;
    la.check_finite = !scaler.enabled();
    ops.step_loss_update(chunk_loss_sums.data(), la, scalars.data());
    clip_and_step(ops, store, *optimizer, scaler, 1, 0.25, 1e-3, s + 1, scalars);
  }

  StepPlan plan;
  plan.request = rq;
  plan.by_op = ops.by_op();
  plan.by_phase_region = ops.by_phase_region();
  plan.total = ops.total();
  plan.unmodelled = ops.unmodelled();
  plan.tokens = len * cb * chunks;
  const auto& at_peak = alloc.at_peak();
  const double flat =
      static_cast<double>(ShapeOnlyAllocator::rounded(static_cast<size_t>(store.flat_params().bytes())));
  plan.parameters = flat;
  plan.gradients = category(at_peak, "parameters and gradients") - flat;
  plan.optimizer_state = category(at_peak, "optimizer state");
  plan.activations = category(at_peak, "activations and memories");
  plan.scratch = category(at_peak, "op scratch");
  for (const Memory<float>& m : memories)
    for (const Tensor<float>& t : m.layers)
      plan.memories += static_cast<double>(ShapeOnlyAllocator::rounded(t.bytes()));
  plan.cublas_workspace = kCublasWorkspace;
  if (rq.storage == PlanStorage::kBf16) {  // modelled: 16-bit activations and a 16-bit weight copy
    plan.activations *= 0.5;
    plan.memories *= 0.5;
    plan.scratch = 0.0;  // no packed operand copies
    plan.weight_copy = flat / 2;
  }
  return plan;
}

std::string format_step_plan(const StepPlan& p) {
  const auto& devs = plan_devices();
  const StepPlanRequest& rq = p.request;
  const ModelConfig& m = rq.model;
  std::string out = fmt::format(
      "traffic model of one training step on one GPU ({}): {} layers, d_model {}, {}x{} heads, d_inner {}, "
      "vocabulary {}\n  batch {} x tgt_len {} (mem_len {}), batch_chunk {}, {} GEMMs on {}, "
      "{}; {} tokens per step\n",
      rq.label.empty() ? "configuration" : rq.label, m.n_layer, m.d_model, m.n_head, m.d_head, m.d_inner, m.n_token,
      rq.chunk_batch * rq.batch_chunk, m.tgt_len, m.mem_len, rq.batch_chunk, plan_precision_name(rq.precision),
      rq.storage == PlanStorage::kBf16 ? "the MODELLED bf16-storage design (docs/gpu.md), not the landed backend"
                                       : "the landed CUDA backend",
      rq.optim, p.tokens);
  std::string dev_cols;
  for (const DeviceSpec& d : devs) dev_cols += fmt::format(" {:>10}", std::string(d.key) + " ms");
  out += fmt::format("\n{:<28} {:>7} {:>9} {:>6} {:>9} {:>9} {:>9}{}\n", "op", "calls", "launches", "syncs", "read GB",
                     "write GB", "GFLOP", dev_cols);
  auto row = [&](const std::string& name, const TrafficCount& c) {
    std::string times;
    for (size_t d = 0; d < devs.size(); ++d) times += fmt::format(" {:>10.3f}", 1e3 * c.roofline_s[d]);
    return fmt::format("{:<28} {:>7} {:>9} {:>6} {:>9.3f} {:>9.3f} {:>9.1f}{}\n", name, c.calls, c.launches,
                       c.host_syncs, c.bytes_read * 1e-9, c.bytes_written * 1e-9, c.flops * 1e-9, times);
  };
  std::vector<std::pair<std::string, TrafficCount>> ops(p.by_op.begin(), p.by_op.end());
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.bytes() > b.second.bytes(); });
  for (const auto& [name, c] : ops) out += row(name, c);
  out += row("total", p.total);

  out += fmt::format("\n{:<28} {:>7} {:>9} {:>6} {:>9} {:>9} {:>9}{}\n", "phase / region", "calls", "launches", "syncs",
                     "read GB", "write GB", "GFLOP", dev_cols);
  for (const char* phase : {"forward", "backward", "optimizer"}) {
    std::vector<std::pair<std::string, TrafficCount>> rows;
    for (const auto& [key, c] : p.by_phase_region)
      if (key.first == phase) rows.emplace_back(key.second, c);
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return region_order(a.first) < region_order(b.first); });
    for (const auto& [region, c] : rows) out += row(std::string(phase) + " / " + region, c);
  }

  out += "\ndevice memory at the peak of live blocks (GB = 1e9 bytes):\n";
  out += fmt::format(
      "  parameters {}, gradients {}, optimizer state {}, activations and memories {} (memories {}), "
      "op scratch {}, cuBLAS workspace {}{}\n  predicted peak {} GB (without the CUDA context and the "
      "arena's size-class rounding, up to 12.5%)\n",
      gb(p.parameters), gb(p.gradients), gb(p.optimizer_state), gb(p.activations), gb(p.memories), gb(p.scratch),
      gb(p.cublas_workspace), p.weight_copy > 0 ? ", bf16 weight copy " + gb(p.weight_copy) : std::string(),
      gb(p.peak()));
  out +=
      "\nroofline time per step (sum over kernels of max(bytes / HBM bandwidth, GEMM FLOPs / dense peak); no "
      "launch or sync cost):\n";
  for (size_t d = 0; d < devs.size(); ++d) {
    const double s = p.total.roofline_s[d];
    out += fmt::format("  {:<14} {:>5.2f} TB/s, {:>6.1f} TFLOP/s {}: {:8.2f} ms/step, {:>9.0f} tok/s\n", devs[d].name,
                       devs[d].hbm_bytes_per_s * 1e-12, devs[d].gemm_flops(rq.precision) * 1e-12,
                       plan_precision_name(rq.precision), 1e3 * s, static_cast<double>(p.tokens) / s);
  }
  if (!p.unmodelled.empty()) {
    out += "ops without a traffic model (counted as one launch each):";
    for (const std::string& op : p.unmodelled) out += " " + op;
    out += "\n";
  }
  return out;
}

std::string format_memory_fit(const StepPlan& p, double memory_bytes, const std::string& device_name) {
  if (p.peak() <= memory_bytes)
    return fmt::format("fits: predicted peak {} GB of the {} GB of {}\n", gb(p.peak()), gb(memory_bytes), device_name);
  std::string out =
      fmt::format("does not fit: predicted peak {} GB > {} GB of {}", gb(p.peak()), gb(memory_bytes), device_name);
  const int64_t batch = p.request.chunk_batch * p.request.batch_chunk;
  for (int64_t chunks = p.request.batch_chunk + 1; chunks <= batch; ++chunks) {
    if (batch % chunks != 0) continue;
    StepPlanRequest rq = p.request;
    rq.batch_chunk = chunks;
    rq.chunk_batch = batch / chunks;
    const StepPlan smaller = plan_training_step(rq);
    if (smaller.peak() <= memory_bytes)
      return out + fmt::format("; with batch_chunk {} the peak is {} GB: use --batch_chunk {}\n", chunks,
                               gb(smaller.peak()), chunks);
  }
  return out + "; no batch_chunk makes it fit (parameters and optimizer state alone are too large)\n";
}

}  // namespace txl
