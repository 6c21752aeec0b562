// The CUDA fused relative attention (src/cuda/rel_attention.cu) against its CPU twin
// (src/cpu/rel_attention.cpp) on random inputs: odd sizes, several query and key tiles,
// same_length with mem_len != mlen, dropatt with a batch window, and the wt103-base
// production shape (8 heads x batch 32, qlen 192, klen 384, d_head 64). Outputs start as
// NaN, so an element no kernel writes fails.
#include <cmath>
#include <string>

#include "gpu_test_util.h"

namespace txl {
namespace {

using gpu_test::GpuTest;

struct Case {
  int64_t heads, batch, qlen, mlen, d_head;
  bool same_length;
  int64_t mem_len;
  float dropatt;
};

class GpuRelAttention : public GpuTest {
 protected:
  void run_case(const Case& c);
};

void GpuRelAttention::run_case(const Case& c) {
  GpuRelAttention& t = *this;
  RelAttentionArgs a;
  a.heads = c.heads;
  a.batch = c.batch;
  a.qlen = c.qlen;
  a.klen = c.qlen + c.mlen;
  a.d_head = c.d_head;
  a.scale = 1.0 / std::sqrt(static_cast<double>(c.d_head));
  a.mask = AttnMask{c.mlen, c.same_length, c.mem_len};
  a.dropatt = c.dropatt;
  a.key = DropoutKey{77, 3, 16 + 8 * 5};
  a.layout = BatchLayout{c.heads, c.batch, a.qlen * a.klen, 1, c.batch + 1};
  const std::string sz = " heads=" + std::to_string(c.heads) + " batch=" + std::to_string(c.batch) +
                         " qlen=" + std::to_string(c.qlen) + " mlen=" + std::to_string(c.mlen) +
                         " d=" + std::to_string(c.d_head) + " same_length=" + std::to_string(c.same_length) +
                         " dropatt=" + std::to_string(c.dropatt);
  const int64_t n = a.n(), q = n * a.qlen * a.d_head, kv = n * a.klen * a.d_head, rr = a.heads * a.klen * a.d_head;
  auto qu = t.both(t.randn(q)), qw = t.both(t.randn(q)), k = t.both(t.randn(kv)), v = t.both(t.randn(kv));
  auto r = t.both(t.randn(rr)), d_out = t.both(t.randn(q));
  auto out = t.poisoned(q), lse = t.poisoned(n * a.qlen);
  t.cpu().rel_attention_fwd(a, qu.c.data(), qw.c.data(), k.c.data(), v.c.data(), r.c.data(), out.c.data(),
                            lse.c.data());
  t.dut().rel_attention_fwd(a, qu.d.data(), qw.d.data(), k.d.data(), v.d.data(), r.d.data(), out.d.data(),
                            lse.d.data());
  t.expect_close(out, "rel_attention_fwd out" + sz);
  t.expect_close(lse, "rel_attention_fwd lse" + sz);
  auto d_qu = t.poisoned(q), d_qw = t.poisoned(q), d_k = t.poisoned(kv), d_v = t.poisoned(kv), d_r = t.poisoned(rr);
  t.cpu().rel_attention_bwd(a, qu.c.data(), qw.c.data(), k.c.data(), v.c.data(), r.c.data(), out.c.data(),
                            lse.c.data(), d_out.c.data(), d_qu.c.data(), d_qw.c.data(), d_k.c.data(), d_v.c.data(),
                            d_r.c.data());
  t.dut().rel_attention_bwd(a, qu.d.data(), qw.d.data(), k.d.data(), v.d.data(), r.d.data(), out.d.data(),
                            lse.d.data(), d_out.d.data(), d_qu.d.data(), d_qw.d.data(), d_k.d.data(), d_v.d.data(),
                            d_r.d.data());
  t.expect_close(d_qu, "rel_attention_bwd d_qu" + sz);
  t.expect_close(d_qw, "rel_attention_bwd d_qw" + sz);
  t.expect_close(d_k, "rel_attention_bwd d_k" + sz);
  t.expect_close(d_v, "rel_attention_bwd d_v" + sz);
  t.expect_close(d_r, "rel_attention_bwd d_r" + sz);
}

TEST_F(GpuRelAttention, MatchesTheCpuOnOddShapes) {
  const Case cases[] = {{1, 1, 1, 0, 1, false, 0, 0.0f},    {2, 3, 7, 5, 4, false, 5, 0.0f},
                        {2, 2, 70, 30, 33, true, 30, 0.3f}, {1, 2, 130, 0, 64, false, 0, 0.1f},
                        {3, 1, 65, 40, 96, true, 50, 0.0f}, {2, 2, 9, 17, 128, true, 17, 0.5f}};
  for (const Case& c : cases) run_case(c);
}

TEST_F(GpuRelAttention, MatchesTheCpuAtTheWt103BaseShape) {
  run_case(Case{8, 32, 192, 192, 64, false, 192, 0.0f});
  run_case(Case{8, 4, 64, 640, 64, true, 640, 0.0f});  // evaluation lengths
}

TEST_F(GpuRelAttention, RejectsBadArguments) {
  RelAttentionArgs a;
  a.heads = 1;
  a.batch = 1;
  a.qlen = 4;
  a.klen = 5;
  a.d_head = 2;
  a.mask.mlen = 2;
  auto x = both(randn(64));
  EXPECT_THROW(dut().rel_attention_fwd(a, x.d.data(), x.d.data(), x.d.data(), x.d.data(), x.d.data(), x.d.data(),
                                       x.d.data()),
               Error);
}

}  // namespace
}  // namespace txl
