// Memory update (docs/model.md §5): after each forward, layer L's memory is exactly rows
// [beg, end) of concat(old mem_L, hid_L), end = mlen + max(0, qlen - ext_len),
// beg = max(0, end - mem_len); hid_L is the input of layer L.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "model_test_util.h"
#include "reference_transformer_xl.h"

namespace txl::test {
namespace {

struct MemCase {
  int64_t qlen, mem_len, ext_len;
};

void PrintTo(const MemCase& c, std::ostream* os) { *os << "qlen " << c.qlen << " mem_len " << c.mem_len << " ext_len " << c.ext_len; }

class MemoryUpdate : public ::testing::TestWithParam<MemCase> {};

TEST_P(MemoryUpdate, KeepsTheExpectedRows) {
  const MemCase mc = GetParam();
  ModelConfig cfg = tiny_config();
  cfg.mem_len = mc.mem_len;
  cfg.ext_len = mc.ext_len;
  cfg.tgt_len = mc.qlen;
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  randomize_params(model, 5);
  ReferenceTransformerXL ref(cfg, model.params(), *ops);
  const int64_t B = 2, M = cfg.d_model, qlen = mc.qlen, n = qlen * B;

  Memory<double> mem;
  std::vector<Vec> ref_mem;
  int64_t ref_mlen = 0;
  for (int step = 0; step < 4; ++step) {
    const int64_t mlen = mem.mlen;
    std::vector<Vec> old_mem;  // host copy of the memory given to this step
    for (int64_t l = 0; l < (mlen > 0 ? cfg.n_layer : 0); ++l)
      old_mem.push_back(to_host(*ops, mem.layers[static_cast<size_t>(l)]));
    const auto data = random_tokens(cfg, n, 10 + static_cast<uint64_t>(step));
    const auto target = random_tokens(cfg, n, 20 + static_cast<uint64_t>(step));
    model.forward(data.data(), target.data(), qlen, B, mem, {});
    const auto out = ref.forward(data, target, qlen, B, ref_mem, ref_mlen);

    const int64_t end = mlen + std::max<int64_t>(0, qlen - mc.ext_len);
    const int64_t beg = std::max<int64_t>(0, end - mc.mem_len);
    ASSERT_EQ(mem.mlen, end - beg) << "step " << step;
    ASSERT_EQ(mem.batch, B);
    ASSERT_EQ(mem.layers.size(), static_cast<size_t>(cfg.n_layer));
    for (int64_t l = 0; l < cfg.n_layer; ++l) {
      const std::vector<double> got = to_host(*ops, mem.layers[static_cast<size_t>(l)]);
      ASSERT_EQ(static_cast<int64_t>(got.size()), (end - beg) * B * M);
      // The engine's own hid_L (layer input of this step) ...
      const std::vector<double> cat = to_host(*ops, model.layer_input(l));
      for (int64_t r = beg; r < end; ++r) {
        for (int64_t k = 0; k < B * M; ++k) {
          const double v = got[static_cast<size_t>((r - beg) * B * M + k)];
          if (r < mlen) {  // carried over from the old memory: bit for bit
            ASSERT_EQ(v, old_mem[static_cast<size_t>(l)][static_cast<size_t>(r * B * M + k)])
                << "step " << step << " layer " << l << " row " << r;
          } else {  // a row of hid_L: the engine's layer input, and the reference's
            ASSERT_EQ(v, cat[static_cast<size_t>(r * B * M + k)]) << "step " << step << " layer " << l;
            const double want = out.hids[static_cast<size_t>(l)][static_cast<size_t>((r - mlen) * B * M + k)];
            ASSERT_NEAR(v, want, 1e-10 * std::max(1.0, std::abs(want))) << "step " << step << " layer " << l;
          }
        }
      }
    }
    ref_mem = ref.new_memory(ref_mem, ref_mlen, out, qlen, B, &ref_mlen);
  }
}

INSTANTIATE_TEST_SUITE_P(Model, MemoryUpdate,
                         ::testing::Values(MemCase{5, 4, 0}, MemCase{5, 8, 0}, MemCase{5, 12, 0}, MemCase{5, 4, 2},
                                           MemCase{5, 8, 3}, MemCase{4, 3, 7}, MemCase{3, 0, 0}, MemCase{6, 6, 6}));

TEST(MemoryWindow, Formula) {
  MemoryWindow w = memory_window(0, 5, 4, 0);
  EXPECT_EQ(w.begin, 1);
  EXPECT_EQ(w.end, 5);
  w = memory_window(4, 5, 8, 2);
  EXPECT_EQ(w.begin, 0);
  EXPECT_EQ(w.end, 7);
  w = memory_window(4, 3, 4, 7);  // ext_len beyond qlen: only old memory rows remain
  EXPECT_EQ(w.begin, 0);
  EXPECT_EQ(w.end, 4);
  w = memory_window(4, 5, 0, 0);
  EXPECT_EQ(w.length(), 0);
}

TEST(MemoryUpdate, RejectsMemoryOfAnotherBatch) {
  ModelConfig cfg = tiny_config();
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> model(cfg, *ops);
  randomize_params(model, 5);
  Memory<double> mem;
  const auto d2 = random_tokens(cfg, 5 * 2, 1), d3 = random_tokens(cfg, 5 * 3, 2);
  model.forward(d2.data(), d2.data(), 5, 2, mem, {});
  try {
    model.forward(d3.data(), d3.data(), 5, 3, mem, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory holds 2 streams but the batch has 3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace txl::test
