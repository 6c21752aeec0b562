// The CUDA fused relative attention (src/cuda/rel_attention.cu) against its CPU twin
// (src/cpu/rel_attention.cpp) on random inputs: odd sizes, several query and key tiles,
// same_length with mem_len != mlen, dropatt with a batch window, and the wt103-base
// production shape (8 heads x batch 32, qlen 192, klen 384, d_head 64). The operands are
// in the projections' row layout (RelAttentionLayout): k and v interleaved in one buffer,
// packed as the model has them or with wider rows. Outputs start as NaN, so an element no
// kernel writes fails, and so does a written padding column (NaN on the CPU).
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
  int64_t pad = 0;  // extra columns of every operand's rows (0: the model's layout)
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
  const int64_t hd = c.heads * c.d_head;
  a.ld = RelAttentionLayout{hd + c.pad, 2 * hd + c.pad, 2 * hd + c.pad, hd + c.pad, hd + c.pad};
  const std::string sz = " heads=" + std::to_string(c.heads) + " batch=" + std::to_string(c.batch) +
                         " qlen=" + std::to_string(c.qlen) + " mlen=" + std::to_string(c.mlen) +
                         " d=" + std::to_string(c.d_head) + " same_length=" + std::to_string(c.same_length) +
                         " dropatt=" + std::to_string(c.dropatt) + " pad=" + std::to_string(c.pad);
  const int64_t n = a.n(), q = a.qlen * a.batch * a.ld.ld_q, kv = a.klen * a.batch * a.ld.ld_k;
  const int64_t rr = a.klen * a.ld.ld_r, o = a.qlen * a.batch * a.ld.ld_out;
  auto qx = t.both(t.randn(q)), u = t.both(t.randn(hd)), w = t.both(t.randn(hd)), kvx = t.both(t.randn(kv));
  auto r = t.both(t.randn(rr)), d_out = t.both(t.randn(o));
  auto out = t.poisoned(o), lse = t.poisoned(n * a.qlen);
  t.cpu().rel_attention_fwd(a, qx.c.data(), u.c.data(), w.c.data(), kvx.c.data(), kvx.c.data() + hd, r.c.data(),
                            out.c.data(), lse.c.data());
  t.dut().rel_attention_fwd(a, qx.d.data(), u.d.data(), w.d.data(), kvx.d.data(), kvx.d.data() + hd, r.d.data(),
                            out.d.data(), lse.d.data());
  t.expect_close(out, "rel_attention_fwd out" + sz);
  t.expect_close(lse, "rel_attention_fwd lse" + sz);
  auto d_q = t.poisoned(q), d_kv = t.poisoned(kv), d_r = t.poisoned(rr);
  auto d_u = t.both(t.randn(hd)), d_w = t.both(t.randn(hd));  // accumulated onto
  t.cpu().rel_attention_bwd(a, qx.c.data(), u.c.data(), w.c.data(), kvx.c.data(), kvx.c.data() + hd, r.c.data(),
                            out.c.data(), lse.c.data(), d_out.c.data(), d_q.c.data(), d_u.c.data(), d_w.c.data(),
                            d_kv.c.data(), d_kv.c.data() + hd, d_r.c.data());
  t.dut().rel_attention_bwd(a, qx.d.data(), u.d.data(), w.d.data(), kvx.d.data(), kvx.d.data() + hd, r.d.data(),
                            out.d.data(), lse.d.data(), d_out.d.data(), d_q.d.data(), d_u.d.data(), d_w.d.data(),
                            d_kv.d.data(), d_kv.d.data() + hd, d_r.d.data());
  t.expect_close(d_q, "rel_attention_bwd d_q" + sz);
  t.expect_close(d_u, "rel_attention_bwd d_u" + sz);
  t.expect_close(d_w, "rel_attention_bwd d_w" + sz);
  t.expect_close(d_kv, "rel_attention_bwd d_k | d_v" + sz);
  t.expect_close(d_r, "rel_attention_bwd d_r" + sz);
}

TEST_F(GpuRelAttention, MatchesTheCpuOnOddShapes) {
  const Case cases[] = {{1, 1, 1, 0, 1, false, 0, 0.0f, 0},    {2, 3, 7, 5, 4, false, 5, 0.0f, 3},
                        {2, 2, 70, 30, 33, true, 30, 0.3f, 0}, {1, 2, 130, 0, 64, false, 0, 0.1f, 5},
                        {3, 1, 65, 40, 96, true, 50, 0.0f, 0}, {2, 2, 9, 17, 128, true, 17, 0.5f, 1}};
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
  a.ld = RelAttentionLayout::packed(2);
  auto x = both(randn(64));
  float* p = x.d.data();
  EXPECT_THROW(dut().rel_attention_fwd(a, p, p, p, p, p, p, p, p), Error);  // klen != qlen + mlen
  a.klen = 6;
  a.ld.ld_out = 1;
  EXPECT_THROW(dut().rel_attention_fwd(a, p, p, p, p, p, p, p, p), Error);  // ld below heads*d_head
  EXPECT_THROW(dut().rel_attention_bwd(a, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p), Error);
}

}  // namespace
}  // namespace txl
