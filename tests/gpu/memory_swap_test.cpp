// swap_mem on the CUDA backend (include/txl/model/memory_swap.h): the memory waits for
// its next step in pinned host memory, copied asynchronously on the compute stream.
//  - model level: a training loop with and without swapping gives bit-identical losses,
//    parameters and memory, and between steps the device arena holds the memory's bytes
//    less (in the CPU stand-in mode the same loop runs on a second CPU backend);
//  - trainer level (GPU only): txl_train's Trainer with swap_mem true and false gives
//    bit-identical losses and parameters.
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "gpu_test_util.h"
#include "txl/dist/communicator.h"
#include "txl/model/memory_swap.h"
#include "txl/model/transformer_xl.h"
#include "txl/programs/corpus_directory.h"
#include "txl/train/trainer.h"

namespace txl {
namespace {

namespace fs = std::filesystem;
using gpu_test::GpuTest;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class GpuMemorySwap : public GpuTest {
 protected:
  struct Result {
    std::vector<std::vector<float>> nll;
    std::vector<float> params;
    std::vector<std::vector<float>> memory;
    std::vector<size_t> in_use;  // device arena bytes after each step (CUDA only)
  };

  Result train(bool swap, int steps) {
    Ops<float>& ops = dut();
    ModelConfig cfg;
    cfg.n_token = 120;
    cfg.n_layer = 3;
    cfg.n_head = 2;
    cfg.d_head = 8;
    cfg.d_model = 16;
    cfg.d_inner = 32;
    cfg.cutoffs = {40};
    cfg.div_val = 2;
    cfg.tie_projs = {false, true};
    cfg.dropout = 0.1;
    cfg.dropatt = 0.1;
    cfg.tgt_len = 6;
    cfg.mem_len = 10;
    TransformerXL<float> model(cfg, ops);
    model.init_params(5);
    MemorySwap<float> swapper(ops);
    Memory<float> mem;
    const int64_t batch = 3, n = cfg.tgt_len * batch;
    Tensor<float> dnll = ops.empty({cfg.tgt_len, batch});
    ops.fill(dnll.data(), n, 1.0f / static_cast<float>(n));
    std::mt19937 rng(9);
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(cfg.n_token) - 1);
    Result r;
    for (int step = 1; step <= steps; ++step) {
      std::vector<int32_t> data(static_cast<size_t>(n)), target(static_cast<size_t>(n));
      for (auto& x : data) x = id(rng);
      for (auto& x : target) x = id(rng);
      StepContext ctx;
      ctx.train = true;
      ctx.seed = 3;
      ctx.step = static_cast<uint64_t>(step);
      model.params().zero_grad(ops);
      if (swap) swapper.to_device(mem);
      r.nll.push_back(to_host(ops, model.forward(data.data(), target.data(), cfg.tgt_len, batch, mem, ctx)));
      if (swap) swapper.to_host(mem);
      model.backward(dnll);
      ParamStore<float>& ps = model.params();
      ops.axpy(ps.total_numel(), -0.05f, ps.flat_grads().data(), ps.flat_params().data());
      ops.synchronize();
      if (CudaBackend* cuda = as_cuda_backend(ops)) r.in_use.push_back(cuda->arena().stats().in_use);
    }
    swapper.to_device(mem);
    r.params = read(ops, model.params().flat_params());
    for (const Tensor<float>& t : mem.layers) r.memory.push_back(read(ops, t));
    return r;
  }
};

TEST_F(GpuMemorySwap, TrainingIsBitIdenticalAndTheArenaHoldsNoMemoryBetweenSteps) {
  const int steps = 4;  // memory 6, 10, 10, 10 rows
  const Result plain = train(false, steps);
  const Result swapped = train(true, steps);
  ASSERT_EQ(plain.nll.size(), swapped.nll.size());
  for (size_t s = 0; s < plain.nll.size(); ++s) EXPECT_TRUE(same_bits(plain.nll[s], swapped.nll[s])) << "step " << s + 1;
  EXPECT_TRUE(same_bits(plain.params, swapped.params));
  ASSERT_EQ(plain.memory.size(), 3u);
  ASSERT_EQ(swapped.memory.size(), 3u);
  for (size_t l = 0; l < 3; ++l) EXPECT_TRUE(same_bits(plain.memory[l], swapped.memory[l])) << "layer " << l;
  if (!require_cuda()) return;  // arena statistics: the CUDA backend only
  ASSERT_EQ(plain.in_use.size(), swapped.in_use.size());
  for (size_t s = 0; s < plain.in_use.size(); ++s)
    EXPECT_GT(plain.in_use[s], swapped.in_use[s]) << "step " << s + 1 << ": the device still holds the memory";
}

TEST_F(GpuMemorySwap, TrainerWithSwapMemIsBitIdentical) {
  if (!require_cuda()) GTEST_SKIP() << "skipped: needs the CUDA backend";
  const fs::path dir = fs::temp_directory_path() / ("txl_gpu_swap_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy(fs::path(TXL_SOURCE_DIR) / "data_prep/samples/wikitext-2", dir / "wikitext-2");
  auto comm = make_single_process_communicator();
  prepare_corpus_directory((dir / "wikitext-2").string(), "wt2", *comm);
  std::vector<float> params[2];
  std::vector<double> losses[2];
  for (int swap = 0; swap < 2; ++swap) {
    TrainConfig c;
    c.data = corpus_file_in_directory((dir / "wikitext-2").string(), "wt2");
    c.dataset = "wt2";
    c.device = "cuda";
    c.swap_mem = swap == 1;
    c.work_dir = (dir / ("work" + std::to_string(swap))).string();
    c.model.n_layer = 2;
    c.model.d_model = 32;
    c.model.n_head = 2;
    c.model.d_head = 16;
    c.model.d_inner = 64;
    c.model.dropout = 0.1;
    c.model.tgt_len = 16;
    c.model.mem_len = 24;
    c.eval_tgt_len = 16;
    c.batch_size = 8;
    c.batch_chunk = 2;
    c.optim = "lamb";
    c.lr = 0.01;
    c.warmup_step = 2;
    c.max_step = 8;
    c.max_step_scheduler = 100;
    c.eval_interval = 4;  // a checkpoint in the middle: the memory comes back for it
    c.eval_max_steps = 2;
    c.no_test = true;
    c.finalize(1);
    Trainer t(c, "", "", *comm);
    t.set_after_step([&](int64_t) { losses[swap].push_back(t.last_step_loss()); });
    t.run();
    Ops<float>& ops = t.model().ops();
    params[swap] = to_host(ops, t.model().params().flat_params());
  }
  ASSERT_EQ(losses[0].size(), 8u);
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_TRUE(same_bits(params[0], params[1]));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace txl
