// swap_mem (include/txl/model/memory_swap.h) through the op interface on the CPU backend:
// a training loop that keeps its memory in staging buffers between steps computes
// bit for bit what the same loop without swapping computes, and between steps the
// backend's allocator holds none of the memory.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "model_test_util.h"
#include "txl/core/forwarding_ops.h"
#include "txl/model/memory_swap.h"

namespace txl::test {
namespace {

// Counts the bytes the backend's allocator has handed out and not taken back, and the
// staging traffic (buffers, copies each way).
class TrackedAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    live += bytes;
    return cpu_allocator().allocate(bytes);
  }
  void deallocate(void* ptr, size_t bytes) override {
    live -= bytes;
    cpu_allocator().deallocate(ptr, bytes);
  }
  Device device() const override { return Device::kCPU; }
  size_t live = 0;
};

class StagingCountingOps final : public ForwardingOps<float> {
 public:
  StagingCountingOps() : ForwardingOps<float>(make_cpu_ops<float>()) {}
  Allocator& allocator() override { return alloc; }
  std::shared_ptr<void> staging_buffer(size_t bytes) override {
    staging_bytes += bytes;
    return ForwardingOps<float>::staging_buffer(bytes);
  }
  void stage_to_device(void* dst, const void* src, size_t bytes) override {
    to_device_bytes += bytes;
    ForwardingOps<float>::stage_to_device(dst, src, bytes);
  }
  void stage_to_host(void* dst, const void* src, size_t bytes) override {
    to_host_bytes += bytes;
    ForwardingOps<float>::stage_to_host(dst, src, bytes);
  }
  TrackedAllocator alloc;
  size_t staging_bytes = 0, to_device_bytes = 0, to_host_bytes = 0;
};

struct SwapRun {
  std::vector<std::vector<float>> nll;  // per step
  std::vector<float> params;            // after the last step
  std::vector<std::vector<float>> memory;  // per layer, after the last step
  std::vector<size_t> live_between_steps;  // allocator bytes after each step
};

// `steps` steps of forward, weighted backward and a plain gradient step (lr 0.05), the
// memory growing to mem_len and then sliding; with `swap`, the memory goes to the host
// after each forward and comes back before the next.
SwapRun train(StagingCountingOps& ops, bool swap, int steps) {
  ModelConfig cfg = tiny_config();
  cfg.dropout = 0.1;  // dropout masks depend on the step only: identical in both runs
  cfg.tgt_len = 3;
  cfg.mem_len = 7;
  TransformerXL<float> model(cfg, ops);
  randomize_params(model, 3);
  MemorySwap<float> swapper(ops);
  Memory<float> mem;
  const int64_t batch = 2, n = cfg.tgt_len * batch;
  Tensor<float> dnll = ops.empty({cfg.tgt_len, batch});
  SwapRun run;
  for (int step = 1; step <= steps; ++step) {
    StepContext ctx;
    ctx.train = true;
    ctx.seed = 17;
    ctx.step = static_cast<uint64_t>(step);
    const auto data = random_tokens(cfg, n, 100 + static_cast<uint64_t>(step));
    const auto target = random_tokens(cfg, n, 200 + static_cast<uint64_t>(step));
    model.params().zero_grad(ops);
    if (swap) {
      swapper.to_device(mem);
      EXPECT_FALSE(swapper.on_host());
    }
    const std::vector<float> nll = to_host(ops, model.forward(data.data(), target.data(), cfg.tgt_len, batch, mem, ctx));
    run.nll.push_back(nll);
    if (swap) {
      swapper.to_host(mem);
      EXPECT_TRUE(swapper.on_host());
      EXPECT_TRUE(mem.layers.empty()) << "step " << step << ": the device still holds the memory";
      EXPECT_EQ(mem.mlen, std::min<int64_t>(step * cfg.tgt_len, cfg.mem_len));  // what it holds stays known
    }
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) w[static_cast<size_t>(i)] = 0.5f + 0.1f * static_cast<float>(i % 5);
    ops.upload(dnll.data(), w.data(), w.size() * sizeof(float));
    model.backward(dnll);
    ParamStore<float>& ps = model.params();
    ops.axpy(ps.total_numel(), -0.05f, ps.flat_grads().data(), ps.flat_params().data());
    ops.synchronize();
    run.live_between_steps.push_back(ops.alloc.live);
  }
  swapper.to_device(mem);  // a checkpoint reads it: back on the device
  run.params = to_host(ops, model.params().flat_params());
  for (const Tensor<float>& t : mem.layers) run.memory.push_back(to_host(ops, t));
  return run;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(MemorySwap, TrainingIsBitIdenticalAndTheDeviceHoldsNoMemoryBetweenSteps) {
  const int steps = 5;  // memory 3, 6, 7, 7, 7 rows: growing, then sliding
  StagingCountingOps plain_ops, swap_ops;
  const SwapRun plain = train(plain_ops, false, steps);
  const SwapRun swapped = train(swap_ops, true, steps);
  ASSERT_EQ(plain.nll.size(), swapped.nll.size());
  for (size_t s = 0; s < plain.nll.size(); ++s) EXPECT_TRUE(same_bits(plain.nll[s], swapped.nll[s])) << "step " << s + 1;
  EXPECT_TRUE(same_bits(plain.params, swapped.params));
  ASSERT_EQ(plain.memory.size(), swapped.memory.size());
  ASSERT_FALSE(plain.memory.empty());
  for (size_t l = 0; l < plain.memory.size(); ++l) EXPECT_TRUE(same_bits(plain.memory[l], swapped.memory[l])) << l;

  // Between steps the swapping run's allocator holds exactly the memory's bytes less.
  const size_t layers = plain.memory.size(), row_bytes = 2 * 8 * sizeof(float);  // batch x d_model floats
  const int64_t rows[] = {3, 6, 7, 7, 7};
  for (int s = 0; s < steps; ++s)
    EXPECT_EQ(plain.live_between_steps[static_cast<size_t>(s)] - swapped.live_between_steps[static_cast<size_t>(s)],
              layers * static_cast<size_t>(rows[s]) * row_bytes)
        << "step " << s + 1;
  // The staging went through the op interface: one buffer per layer and size (3 and 6
  // rows, then 7), every step's memory out and (steps 2..5 and the final one) back in.
  EXPECT_EQ(swap_ops.staging_bytes, layers * (3 + 6 + 7) * row_bytes);
  EXPECT_EQ(swap_ops.to_host_bytes, layers * (3 + 6 + 7 + 7 + 7) * row_bytes);
  EXPECT_EQ(swap_ops.to_device_bytes, swap_ops.to_host_bytes);
  EXPECT_EQ(plain_ops.to_host_bytes + plain_ops.to_device_bytes + plain_ops.staging_bytes, 0u);
}

TEST(MemorySwap, EmptyMemoryAndRepeatedCallsChangeNothing) {
  StagingCountingOps ops;
  MemorySwap<float> swapper(ops);
  Memory<float> mem;
  swapper.to_host(mem);  // nothing to move yet (the first step has no memory)
  EXPECT_FALSE(swapper.on_host());
  swapper.to_device(mem);
  EXPECT_TRUE(mem.layers.empty());
  mem.layers.push_back(to_device(ops, std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 1, 2}));
  mem.mlen = 3;
  mem.batch = 1;
  swapper.to_host(mem);
  swapper.to_host(mem);  // already there
  EXPECT_EQ(ops.to_host_bytes, 6 * sizeof(float));
  swapper.to_device(mem);
  swapper.to_device(mem);  // already there
  ASSERT_EQ(mem.layers.size(), 1u);
  EXPECT_EQ(mem.layers[0].shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(to_host(ops, mem.layers[0]), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(ops.to_device_bytes, 6 * sizeof(float));
}

}  // namespace
}  // namespace txl::test
