// RecordingOps / RecordedStepGraph: the CPU twin of CUDA-graph capture. Recording runs
// nothing, a replay runs the recorded ops on the buffers' current contents, host
// transfers are refused while recording, and memory touched by a recording stays
// reserved until the graph goes away.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "txl/core/recording_ops.h"

namespace txl {
namespace {

std::vector<double> values(Ops<double>& ops, const Tensor<double>& t) { return to_host(ops, t); }

TEST(RecordingOps, ForwardsEveryOpWhenNotRecording) {
  RecordingOps<double> ops(make_cpu_ops<double>());
  EXPECT_EQ(std::string(ops.name()), std::string(ops.inner().name()) + "+graph");
  Tensor<double> x = to_device<double>(ops, {1, 2, 3}, {3}), y = to_device<double>(ops, {10, 20, 30}, {3});
  ops.axpy(3, 2.0, x.data(), y.data());
  EXPECT_EQ(values(ops, y), (std::vector<double>{12, 24, 36}));
  EXPECT_EQ(ops.sum(y.data(), 3), 72.0);
  EXPECT_FALSE(ops.recording());
}

TEST(RecordedStepGraph, CaptureRunsNothingAndReplaySeesNewInputs) {
  RecordingOps<double> ops(make_cpu_ops<double>());
  const int64_t m = 3, k = 4, n = 2;
  Tensor<double> a = to_device<double>(ops, {1, -2, 3, 0.5, 2, 1, -1, 4, 0, 3, 1, -2}, {m, k});
  Tensor<double> b = to_device<double>(ops, {0.5, 1, -1, 2, 3, 0, 1, 1}, {k, n});
  Tensor<double> c = to_device<double>(ops, {7, 7, 7, 7, 7, 7}, {m, n});
  auto step = [&] {
    ops.gemm(Trans::kNo, Trans::kNo, m, n, k, 1.0, a.data(), k, b.data(), n, 0.0, c.data(), n);
    ops.relu_fwd(m * n, c.data(), c.data());
    ops.scale(m * n, 2.0, c.data());
  };
  auto expected = [&] {  // the step by hand on the current inputs
    const std::vector<double> ha = values(ops, a), hb = values(ops, b);
    std::vector<double> out(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t l = 0; l < k; ++l) s += ha[static_cast<size_t>(i * k + l)] * hb[static_cast<size_t>(l * n + j)];
        out[static_cast<size_t>(i * n + j)] = 2.0 * (s > 0 ? s : 0.0);
      }
    return out;
  };
  RecordedStepGraph<double> graph(ops);
  EXPECT_FALSE(graph.captured());
  EXPECT_THROW(graph.replay(), Error);
  graph.capture(step);
  EXPECT_TRUE(graph.captured());
  EXPECT_EQ(graph.num_nodes(), 3u);
  EXPECT_EQ(values(ops, c), std::vector<double>(6, 7.0)) << "capturing must not execute";
  graph.replay();
  EXPECT_EQ(values(ops, c), expected());
  const std::vector<double> a2{-1, 2, 0.25, 3, 1, 1, 1, 1, -3, 0, 2, 5};
  ops.upload(a.data(), a2.data(), a.bytes());  // new input in the same buffer
  graph.replay();
  EXPECT_EQ(values(ops, c), expected());
}

TEST(RecordedStepGraph, HostTransfersAreRefusedWhileRecording) {
  RecordingOps<double> ops(make_cpu_ops<double>());
  Tensor<double> x = to_device<double>(ops, {1, 2, 3, 4}, {4});
  std::vector<double> host(4, 0.0);
  RecordedStepGraph<double> graph(ops);
  const std::vector<std::pair<std::string, std::function<void()>>> refused = {
      {"upload", [&] { ops.upload(x.data(), host.data(), x.bytes()); }},
      {"download", [&] { ops.download(host.data(), x.data(), x.bytes()); }},
      {"synchronize", [&] { ops.synchronize(); }},
      {"sum", [&] { (void)ops.sum(x.data(), 4); }},
      {"sum_squares", [&] { (void)ops.sum_squares(x.data(), 4); }},
      {"sum_squares_slices", [&] { (void)ops.sum_squares_slices(x.data(), {{0, 2}, {2, 2}}); }},
  };
  for (const auto& [name, op] : refused) {
    try {
      graph.capture([&] {
        ops.scale(4, 2.0, x.data());
        op();
      });
      ADD_FAILURE() << name << " was recorded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("graph capture: " + name + " moves data between host and device"),
                std::string::npos)
          << e.what();
    }
    EXPECT_FALSE(graph.captured()) << name;
    EXPECT_FALSE(ops.recording()) << name;
  }
  EXPECT_EQ(values(ops, x), (std::vector<double>{1, 2, 3, 4})) << "a refused capture ran nothing";
}

TEST(RecordedStepGraph, MemoryUsedByARecordingStaysReservedUntilTheGraphGoes) {
  RecordingOps<double> ops(make_cpu_ops<double>());
  Tensor<double> x = to_device<double>(ops, {1, 2, 3, 4}, {4});
  Tensor<double> out = ops.empty({4});
  {
    RecordedStepGraph<double> graph(ops);
    const double* temp_ptr = nullptr;
    graph.capture([&] {
      Tensor<double> temp = ops.empty({4});  // a temporary of the step, freed inside it
      temp_ptr = temp.data();
      ops.add(4, x.data(), x.data(), temp.data());
      ops.copy(out.data(), temp.data(), temp.bytes());
    });
    EXPECT_EQ(ops.recording_allocator().reserved_blocks(), 1u);
    std::vector<Tensor<double>> later;  // new allocations never get the temporary's memory
    for (int i = 0; i < 8; ++i) {
      later.push_back(ops.empty({4}));
      EXPECT_NE(later.back().data(), temp_ptr);
    }
    graph.replay();
    EXPECT_EQ(values(ops, out), (std::vector<double>{2, 4, 6, 8}));
  }
  EXPECT_EQ(ops.recording_allocator().reserved_blocks(), 0u) << "released with the graph";
}

TEST(RecordedStepGraph, OnlyARecordingBackendMakesOne) {
  auto cpu = make_cpu_ops<float>();
  EXPECT_EQ(make_recorded_step_graph(*cpu), nullptr);
  RecordingOps<float> rec(make_cpu_ops<float>());
  auto graph = make_recorded_step_graph<float>(rec);
  ASSERT_NE(graph, nullptr);
  EXPECT_FALSE(graph->captured());
}

}  // namespace
}  // namespace txl
