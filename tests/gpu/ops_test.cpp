// Every op of the CUDA backend against the CPU backend on fresh random inputs of several
// shapes (odd sizes, klen != qlen, padded leading dimensions). Outputs that an op
// overwrites start as NaN on both sides; accumulated outputs start as the same random
// values. Tolerance: relative 1e-5 (strict float32 GEMMs); dropout masks bit-identical.
#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <tuple>

#include "gpu_test_util.h"

namespace txl {
namespace {

using gpu_test::GpuTest;
using gpu_test::kNaN;

class GpuOps : public GpuTest {};

// ---- memory ------------------------------------------------------------------------------

TEST_F(GpuOps, UploadDownloadCopyFill) {
  const auto host = randn(1031);
  auto t = on(dut(), host);
  EXPECT_EQ(read(dut(), t), host);
  Tensor<float> u(Shape{1031}, dut().allocator());
  dut().copy(u.data(), t.data(), t.bytes());
  EXPECT_EQ(read(dut(), u), host);
  // Overlapping copy has memmove semantics.
  auto p = both(host);
  cpu().copy(p.c.data() + 3, p.c.data(), 1000 * sizeof(float));
  dut().copy(p.d.data() + 3, p.d.data(), 1000 * sizeof(float));
  expect_identical(p, "overlapping copy forward");
  cpu().copy(p.c.data(), p.c.data() + 5, 1000 * sizeof(float));
  dut().copy(p.d.data(), p.d.data() + 5, 1000 * sizeof(float));
  expect_identical(p, "overlapping copy backward");
  auto f = poisoned(777);
  cpu().fill(f.c.data(), 777, 2.5f);
  dut().fill(f.d.data(), 777, 2.5f);
  expect_identical(f, "fill");
  dut().synchronize();
}

// ---- GEMM --------------------------------------------------------------------------------

struct GemmShape {
  int64_t m, n, k, pad;
};

TEST_F(GpuOps, GemmAllTransposesAndShapes) {
  const GemmShape shapes[] = {{1, 1, 1, 0}, {7, 5, 3, 2}, {33, 65, 17, 0}, {128, 96, 64, 5}, {130, 257, 70, 1}};
  for (const GemmShape& s : shapes)
    for (Trans ta : {Trans::kNo, Trans::kYes})
      for (Trans tb : {Trans::kNo, Trans::kYes})
        for (float beta : {0.0f, 0.5f}) {
          const int64_t a_rows = ta == Trans::kNo ? s.m : s.k, a_cols = ta == Trans::kNo ? s.k : s.m;
          const int64_t b_rows = tb == Trans::kNo ? s.k : s.n, b_cols = tb == Trans::kNo ? s.n : s.k;
          const int64_t lda = a_cols + s.pad, ldb = b_cols + s.pad, ldc = s.n + s.pad;
          auto A = both(randn(a_rows * lda)), B = both(randn(b_rows * ldb));
          auto c_host = randn(s.m * ldc);
          if (beta == 0.0f)  // beta 0 must never read C: poison the part that is written
            for (int64_t r = 0; r < s.m; ++r)
              for (int64_t c = 0; c < s.n; ++c) c_host[static_cast<size_t>(r * ldc + c)] = kNaN;
          auto C = both(c_host);
          cpu().gemm(ta, tb, s.m, s.n, s.k, 1.25f, A.c.data(), lda, B.c.data(), ldb, beta, C.c.data(), ldc);
          dut().gemm(ta, tb, s.m, s.n, s.k, 1.25f, A.d.data(), lda, B.d.data(), ldb, beta, C.d.data(), ldc);
          expect_close(C, "gemm m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" +
                              std::to_string(s.k) + " ta=" + std::to_string(ta == Trans::kYes) +
                              " tb=" + std::to_string(tb == Trans::kYes) + " beta=" + std::to_string(beta));
        }
}

TEST_F(GpuOps, GemmDegenerateSizes) {
  // k == 0: C = beta C; alpha == 0 likewise; beta == 0 then writes zeros over NaN.
  const int64_t m = 6, n = 9, ldc = 11;
  for (auto [k, alpha, beta] : {std::tuple<int64_t, float, float>{0, 1.0f, 0.0f}, {0, 1.0f, 0.75f}, {4, 0.0f, 0.0f},
                                {4, 0.0f, 2.0f}}) {
    auto A = both(randn(m * 4 + 4)), B = both(randn(4 * n + 4));
    auto c_host = randn(m * ldc);
    if (beta == 0.0f)
      for (int64_t r = 0; r < m; ++r) c_host[static_cast<size_t>(r * ldc + 2)] = kNaN;
    auto C = both(c_host);
    cpu().gemm(Trans::kNo, Trans::kNo, m, n, k, alpha, A.c.data(), std::max<int64_t>(k, 1), B.c.data(), n, beta,
               C.c.data(), ldc);
    dut().gemm(Trans::kNo, Trans::kNo, m, n, k, alpha, A.d.data(), std::max<int64_t>(k, 1), B.d.data(), n, beta,
               C.d.data(), ldc);
    expect_identical(C, "gemm k=" + std::to_string(k) + " alpha=" + std::to_string(alpha) +
                            " beta=" + std::to_string(beta));
  }
}

TEST_F(GpuOps, GemmStridedBatchedLikeAttention) {
  // Shapes of the attention products: scores = q k^T ([qlen, d] x [klen, d]^T) and
  // out = probs v ([qlen, klen] x [klen, d]), with klen != qlen and padded strides.
  for (auto [batch, qlen, klen, d] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 1, 1, 1}, {6, 7, 12, 5},
                                      {16, 33, 65, 64}}) {
    const int64_t sq = qlen * d + 3, sk = klen * d + 1, ss = qlen * klen + 2;
    auto q = both(randn(batch * sq)), k = both(randn(batch * sk));
    auto s = poisoned(batch * ss);
    cpu().gemm_strided_batched(Trans::kNo, Trans::kYes, qlen, klen, d, 0.125f, q.c.data(), d, sq, k.c.data(), d, sk,
                               0.0f, s.c.data(), klen, ss, batch);
    dut().gemm_strided_batched(Trans::kNo, Trans::kYes, qlen, klen, d, 0.125f, q.d.data(), d, sq, k.d.data(), d, sk,
                               0.0f, s.d.data(), klen, ss, batch);
    expect_close(s, "batched q k^T");
    auto out = both(randn(batch * sq));
    cpu().gemm_strided_batched(Trans::kNo, Trans::kNo, qlen, d, klen, 1.0f, s.c.data(), klen, ss, k.c.data(), d, sk,
                               1.0f, out.c.data(), d, sq, batch);
    dut().gemm_strided_batched(Trans::kNo, Trans::kNo, qlen, d, klen, 1.0f, s.d.data(), klen, ss, k.d.data(), d, sk,
                               1.0f, out.d.data(), d, sq, batch);
    expect_close(out, "batched probs v (beta 1)");
    auto dq = both(randn(batch * sk));
    cpu().gemm_strided_batched(Trans::kYes, Trans::kNo, klen, d, qlen, 1.0f, s.c.data(), klen, ss, q.c.data(), d, sq,
                               0.0f, dq.c.data(), d, sk, batch);
    dut().gemm_strided_batched(Trans::kYes, Trans::kNo, klen, d, qlen, 1.0f, s.d.data(), klen, ss, q.d.data(), d, sq,
                               0.0f, dq.d.data(), d, sk, batch);
    expect_close(dq, "batched s^T q");
  }
}

// ---- elementwise -------------------------------------------------------------------------

TEST_F(GpuOps, BiasAndBiasGrad) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {1000, 37}, {129, 1025}, {3072, 410}}) {
    auto y = both(randn(rows * cols)), bias = both(randn(cols));
    cpu().add_bias(y.c.data(), bias.c.data(), rows, cols);
    dut().add_bias(y.d.data(), bias.d.data(), rows, cols);
    expect_close(y, "add_bias " + std::to_string(rows) + "x" + std::to_string(cols));
    auto db = both(randn(cols));  // accumulated
    cpu().bias_grad(y.c.data(), db.c.data(), rows, cols);
    dut().bias_grad(y.d.data(), db.d.data(), rows, cols);
    expect_close(db, "bias_grad " + std::to_string(rows) + "x" + std::to_string(cols));
  }
}

TEST_F(GpuOps, AxpyScaleAddRelu) {
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{(1 << 20) + 3}}) {
    const std::string sz = " n=" + std::to_string(n);
    auto x = both(randn(n)), y = both(randn(n));
    cpu().axpy(n, -0.75f, x.c.data(), y.c.data());
    dut().axpy(n, -0.75f, x.d.data(), y.d.data());
    expect_close(y, "axpy" + sz);
    cpu().scale(n, 1.5f, y.c.data());
    dut().scale(n, 1.5f, y.d.data());
    expect_close(y, "scale" + sz);
    auto out = poisoned(n);
    cpu().add(n, x.c.data(), y.c.data(), out.c.data());
    dut().add(n, x.d.data(), y.d.data(), out.d.data());
    expect_close(out, "add" + sz);
    cpu().add(n, x.c.data(), y.c.data(), x.c.data());  // aliasing output
    dut().add(n, x.d.data(), y.d.data(), x.d.data());
    expect_close(x, "add in place" + sz);
    // ReLU on fresh inputs (identical on both sides): exact results.
    auto z = both(randn(n)), r = poisoned(n);
    cpu().relu_fwd(n, z.c.data(), r.c.data());
    dut().relu_fwd(n, z.d.data(), r.d.data());
    expect_identical(r, "relu_fwd" + sz);
    auto dy = both(randn(n)), dx = poisoned(n);
    cpu().relu_bwd(n, r.c.data(), dy.c.data(), dx.c.data());
    dut().relu_bwd(n, r.d.data(), dy.d.data(), dx.d.data());
    expect_identical(dx, "relu_bwd" + sz);
    cpu().relu_fwd(n, z.c.data(), z.c.data());  // in place
    dut().relu_fwd(n, z.d.data(), z.d.data());
    expect_identical(z, "relu_fwd in place" + sz);
  }
}

TEST_F(GpuOps, DropoutMasksAreBitIdentical) {
  const BatchLayout layouts[] = {{1, 1, 1, 0, 1}, {7, 3, 33, 2, 8}, {5, 4, 1000, 0, 4}, {1, 1, 12345, 0, 1},
                                 {64, 16, 410, 16, 32}};
  uint32_t site = 0;
  for (const BatchLayout& layout : layouts)
    for (float p : {0.0f, 0.1f, 0.5f, 0.9f}) {
      const int64_t n = layout.outer * layout.batch * layout.inner;
      ++site;
      DropoutKey key;
      key.seed = 0x1234567890abcdefull;
      key.step = (uint64_t{1} << 33) + 77 * site;  // both 32-bit halves of the step in use
      key.site = site;
      auto x = both(randn(n)), y = poisoned(n);
      cpu().dropout(x.c.data(), y.c.data(), p, key, layout);
      dut().dropout(x.d.data(), y.d.data(), p, key, layout);
      const std::string what = "dropout p=" + std::to_string(p) + " inner=" + std::to_string(layout.inner) +
                               " offset=" + std::to_string(layout.batch_offset);
      expect_identical(y, what);
      cpu().dropout(x.c.data(), x.c.data(), p, key, layout);  // in place
      dut().dropout(x.d.data(), x.d.data(), p, key, layout);
      expect_identical(x, what + " in place");
    }
  // Bad arguments are rejected before any launch.
  auto x = both(randn(4));
  EXPECT_THROW(dut().dropout(x.d.data(), x.d.data(), 1.0f, DropoutKey{}, BatchLayout{1, 1, 4, 0, 1}), Error);
  EXPECT_THROW(dut().dropout(x.d.data(), x.d.data(), 0.5f, DropoutKey{}, BatchLayout{1, 2, 2, 1, 2}), Error);
}

TEST_F(GpuOps, BiasReluDropoutAndBackward) {
  const BatchLayout layouts[] = {{1, 1, 1, 0, 1}, {7, 3, 33, 2, 8}, {192, 32, 2048, 0, 32}, {3, 2, 2049, 1, 3}};
  uint32_t site = 100;
  for (const BatchLayout& layout : layouts)
    for (float p : {0.0f, 0.1f}) {
      const int64_t n = layout.outer * layout.batch * layout.inner;
      const DropoutKey key{0xfeedbeefcafef00dull, (uint64_t{1} << 33) + ++site, site};
      const std::string what = " inner=" + std::to_string(layout.inner) + " p=" + std::to_string(p);
      auto x = both(randn(n)), bias = both(randn(layout.inner)), y = poisoned(n);
      cpu().bias_relu_dropout(x.c.data(), bias.c.data(), p, key, layout, y.c.data());
      dut().bias_relu_dropout(x.d.data(), bias.d.data(), p, key, layout, y.d.data());
      expect_identical(y, "bias_relu_dropout" + what);
      auto dy = both(randn(n)), dx = poisoned(n);
      cpu().relu_dropout_bwd(n, y.c.data(), dy.c.data(), p, dx.c.data());
      dut().relu_dropout_bwd(n, y.d.data(), dy.d.data(), p, dx.d.data());
      expect_identical(dx, "relu_dropout_bwd" + what);
      cpu().bias_relu_dropout(x.c.data(), bias.c.data(), p, key, layout, x.c.data());  // in place
      dut().bias_relu_dropout(x.d.data(), bias.d.data(), p, key, layout, x.d.data());
      expect_identical(x, "bias_relu_dropout in place" + what);
    }
}

// ---- layer norm --------------------------------------------------------------------------

TEST_F(GpuOps, LayerNormForwardBackward) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {5, 7}, {64, 410}, {33, 1024}, {3, 2049}}) {
    const std::string sz = " " + std::to_string(rows) + "x" + std::to_string(cols);
    auto x_host = randn(rows * cols, 2.0f);
    for (float& v : x_host) v += 0.5f;  // non-zero mean
    auto x = both(x_host), gamma = both(randn(cols)), beta = both(randn(cols));
    auto y = poisoned(rows * cols), mean = poisoned(rows), rstd = poisoned(rows);
    cpu().layernorm_fwd(rows, cols, x.c.data(), gamma.c.data(), beta.c.data(), 1e-5f, y.c.data(), mean.c.data(),
                        rstd.c.data());
    dut().layernorm_fwd(rows, cols, x.d.data(), gamma.d.data(), beta.d.data(), 1e-5f, y.d.data(), mean.d.data(),
                        rstd.d.data());
    expect_close(y, "layernorm y" + sz);
    expect_close(mean, "layernorm mean" + sz);
    expect_close(rstd, "layernorm rstd" + sz);
    auto dy = both(randn(rows * cols)), dx = poisoned(rows * cols);
    auto dgamma = both(randn(cols)), dbeta = both(randn(cols));  // accumulated
    cpu().layernorm_bwd(rows, cols, dy.c.data(), x.c.data(), gamma.c.data(), mean.c.data(), rstd.c.data(),
                        dx.c.data(), dgamma.c.data(), dbeta.c.data());
    dut().layernorm_bwd(rows, cols, dy.d.data(), x.d.data(), gamma.d.data(), mean.d.data(), rstd.d.data(),
                        dx.d.data(), dgamma.d.data(), dbeta.d.data());
    // With one column dx is exactly 0 up to rounding: compare absolutely.
    expect_close(dx, "layernorm dx" + sz, cols == 1 ? 1e-6 : kTol);
    expect_close(dgamma, "layernorm dgamma" + sz);
    expect_close(dbeta, "layernorm dbeta" + sz);
    // dx may alias dy.
    cpu().layernorm_bwd(rows, cols, dy.c.data(), x.c.data(), gamma.c.data(), mean.c.data(), rstd.c.data(),
                        dy.c.data(), dgamma.c.data(), dbeta.c.data());
    dut().layernorm_bwd(rows, cols, dy.d.data(), x.d.data(), gamma.d.data(), mean.d.data(), rstd.d.data(),
                        dy.d.data(), dgamma.d.data(), dbeta.d.data());
    expect_close(dy, "layernorm dx aliasing dy" + sz, cols == 1 ? 1e-6 : kTol);
  }
}

// The fused residual tail, production shape (tgt_len 192 x batch 32 streams, d_model 512)
// included. Masks must agree bit for bit: without a LayerNorm and with a zero residual
// the outputs are exactly the dropout of x + bias (forward) and of dy (backward); with it
// d_x is zero exactly where the mask drops.
TEST_F(GpuOps, DropoutResidualLayerNorm) {
  struct Case {
    int64_t outer, batch, cols, offset, global;
  };
  for (const Case& k : {Case{192, 32, 512, 16, 64}, Case{37, 1, 19, 2, 5}, Case{7, 3, 33, 2, 8},
                        Case{1, 1, 1, 0, 1}, Case{5, 4, 1000, 0, 4}, Case{3, 2, 2049, 1, 3}}) {
    const int64_t rows = k.outer * k.batch, cols = k.cols, n = rows * cols;
    const BatchLayout layout{k.outer, k.batch, cols, k.offset, k.global};
    for (bool with_bias : {false, true})
      for (bool with_ln : {false, true})
        for (float p : {0.0f, 0.1f}) {
          const std::string what = " " + std::to_string(rows) + "x" + std::to_string(cols) +
                                   (with_bias ? " bias" : "") + (with_ln ? " ln" : "") + " p=" + std::to_string(p);
          const DropoutKey key{0x1234567890abcdefull, (uint64_t{1} << 33) + 5, 17};
          auto x_host = randn(n, 2.0f);
          for (float& v : x_host) v += 0.5f;  // non-zero mean
          auto x = both(x_host), residual = both(with_ln ? randn(n) : std::vector<float>(static_cast<size_t>(n)));
          auto bias = both(randn(cols)), gamma = both(randn(cols)), beta = both(randn(cols));
          auto sum = poisoned(n), y = poisoned(n), mean = poisoned(rows), rstd = poisoned(rows);
          auto fwd = [&](Ops<float>& ops, bool dev) {
            auto pick = [dev](Pair<float>& t) { return dev ? t.d.data() : t.c.data(); };
            ops.dropout_residual_layernorm_fwd(rows, cols, pick(x), with_bias ? pick(bias) : nullptr, p, key, layout,
                                               pick(residual), with_ln ? pick(gamma) : nullptr, pick(beta), 1e-5f,
                                               pick(sum), pick(y), pick(mean), pick(rstd));
          };
          fwd(cpu(), false);
          fwd(dut(), true);
          if (with_ln) {
            expect_close(sum, "residual tail sum" + what);
            expect_close(y, "residual tail y" + what);
            expect_close(mean, "residual tail mean" + what);
            expect_close(rstd, "residual tail rstd" + what);
          } else {
            expect_identical(sum, "residual tail sum (= dropout(x + bias))" + what);
            expect_identical(y, "residual tail y (untouched)" + what);
          }

          auto dy = both(randn(n)), d_sum = poisoned(n), d_x = poisoned(n);
          auto dgamma = both(randn(cols)), dbeta = both(randn(cols)), dbias = both(randn(cols));  // accumulated
          auto bwd = [&](Ops<float>& ops, bool dev) {
            auto pick = [dev](Pair<float>& t) { return dev ? t.d.data() : t.c.data(); };
            ops.dropout_residual_layernorm_bwd(rows, cols, pick(dy), pick(sum), with_ln ? pick(gamma) : nullptr,
                                               pick(mean), pick(rstd), p, key, layout, pick(d_sum), pick(d_x),
                                               pick(dgamma), pick(dbeta), with_bias ? pick(dbias) : nullptr);
          };
          bwd(cpu(), false);
          bwd(dut(), true);
          if (with_ln) {
            // With one column the LayerNorm gradient is exactly 0 up to rounding: compare absolutely.
            expect_close(d_sum, "residual tail d_sum" + what, cols == 1 ? 1e-6 : kTol);
            expect_close(d_x, "residual tail d_x" + what, cols == 1 ? 1e-6 : kTol);
            expect_close(dgamma, "residual tail dgamma" + what);
            expect_close(dbeta, "residual tail dbeta" + what);
            if (cols > 1) {
              const std::vector<float> want = read(cpu(), d_x.c), got = read(dut(), d_x.d);
              int64_t differ = 0;
              for (size_t i = 0; i < want.size(); ++i) differ += (want[i] == 0.0f) != (got[i] == 0.0f);
              EXPECT_EQ(differ, 0) << "residual tail dropout mask" << what;
            }
          } else {
            expect_identical(d_sum, "residual tail d_sum (= dy)" + what);
            expect_identical(d_x, "residual tail d_x (= dropout(dy))" + what);
          }
          expect_close(dbias, "residual tail dbias" + what);
        }
  }
  // Bad arguments are rejected before any launch.
  auto a = both(randn(12));
  EXPECT_THROW(dut().dropout_residual_layernorm_fwd(3, 4, a.d.data(), nullptr, 1.0f, DropoutKey{},
                                                    BatchLayout{3, 1, 4, 0, 1}, a.d.data(), nullptr, nullptr, 1e-5f,
                                                    a.d.data(), nullptr, nullptr, nullptr),
               Error);
  EXPECT_THROW(dut().dropout_residual_layernorm_bwd(3, 4, a.d.data(), nullptr, nullptr, nullptr, nullptr, 0.5f,
                                                    DropoutKey{}, BatchLayout{3, 1, 5, 0, 1}, nullptr, a.d.data(),
                                                    nullptr, nullptr, nullptr),
               Error);
}

// ---- attention ---------------------------------------------------------------------------

TEST_F(GpuOps, SplitMergeHeadsAndHeadBiasGrad) {
  for (auto [len, batch, heads, d_head] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t>{1, 1, 1, 1}, {7, 3, 2, 5}, {33, 4, 8, 16}, {20, 2, 3, 41}}) {
    const std::string sz = " len=" + std::to_string(len) + " heads=" + std::to_string(heads);
    const int64_t hd = heads * d_head, ld = 3 * hd + 1;  // the fused qkv rows plus padding
    auto src = both(randn(len * batch * ld)), bias = both(randn(hd));
    const int64_t n = heads * batch * len * d_head;
    for (int part = 0; part < 3; ++part) {  // q, k, v blocks of the fused rows
      auto dst = poisoned(n), dst_nobias = poisoned(n);
      cpu().split_heads(src.c.data() + part * hd, len, batch, heads, d_head, ld, bias.c.data(), dst.c.data());
      dut().split_heads(src.d.data() + part * hd, len, batch, heads, d_head, ld, bias.d.data(), dst.d.data());
      expect_identical(dst, "split_heads with bias" + sz);
      cpu().split_heads(src.c.data() + part * hd, len, batch, heads, d_head, ld, nullptr, dst_nobias.c.data());
      dut().split_heads(src.d.data() + part * hd, len, batch, heads, d_head, ld, nullptr, dst_nobias.d.data());
      expect_identical(dst_nobias, "split_heads" + sz);
    }
    auto heads_src = both(randn(n));
    auto over = both(randn(len * batch * ld)), acc = both(randn(len * batch * ld));
    cpu().merge_heads(heads_src.c.data(), len, batch, heads, d_head, ld, false, over.c.data() + hd);
    dut().merge_heads(heads_src.d.data(), len, batch, heads, d_head, ld, false, over.d.data() + hd);
    expect_identical(over, "merge_heads overwrite (other columns untouched)" + sz);
    cpu().merge_heads(heads_src.c.data(), len, batch, heads, d_head, ld, true, acc.c.data());
    dut().merge_heads(heads_src.d.data(), len, batch, heads, d_head, ld, true, acc.d.data());
    expect_identical(acc, "merge_heads accumulate" + sz);
    auto bg = both(randn(hd));
    cpu().head_bias_grad(heads_src.c.data(), len, batch, heads, d_head, bg.c.data());
    dut().head_bias_grad(heads_src.d.data(), len, batch, heads, d_head, bg.d.data());
    expect_close(bg, "head_bias_grad" + sz);
  }
}

TEST_F(GpuOps, RelativeShiftForwardBackward) {
  for (auto [n, qlen, mlen] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 0}, {6, 5, 0}, {6, 5, 3}, {4, 16, 16},
                               {3, 16, 24}, {2, 7, 40}}) {
    const int64_t klen = qlen + mlen;
    const std::string sz = " qlen=" + std::to_string(qlen) + " mlen=" + std::to_string(mlen);
    auto bd = both(randn(n * qlen * klen)), scores = both(randn(n * qlen * klen));
    cpu().rel_shift_add(bd.c.data(), n, qlen, klen, mlen, scores.c.data());
    dut().rel_shift_add(bd.d.data(), n, qlen, klen, mlen, scores.d.data());
    expect_identical(scores, "rel_shift_add" + sz);
    auto d_bd = poisoned(n * qlen * klen);
    cpu().rel_shift_bwd(scores.c.data(), n, qlen, klen, mlen, d_bd.c.data());
    dut().rel_shift_bwd(scores.d.data(), n, qlen, klen, mlen, d_bd.d.data());
    expect_identical(d_bd, "rel_shift_bwd" + sz);
  }
  auto x = both(randn(64));
  EXPECT_THROW(dut().rel_shift_add(x.d.data(), 1, 4, 5, 2, x.d.data()), Error);  // klen != qlen + mlen
}

TEST_F(GpuOps, MaskedSoftmaxForwardBackward) {
  struct Case {
    int64_t n, qlen, mlen, mem_len;
    bool same_length;
  };
  const Case cases[] = {{1, 1, 0, 0, false},   {6, 5, 0, 0, false},   {6, 5, 3, 3, false},  {4, 16, 16, 16, true},
                        {4, 16, 8, 16, true},  {3, 12, 20, 12, true}, {2, 7, 40, 40, false}, {8, 64, 64, 64, true},
                        {2, 33, 0, 33, true}};
  for (const Case& c : cases) {
    const int64_t klen = c.qlen + c.mlen, total = c.n * c.qlen * klen;
    const std::string sz = " qlen=" + std::to_string(c.qlen) + " mlen=" + std::to_string(c.mlen) +
                           " mem_len=" + std::to_string(c.mem_len) + " same_length=" + std::to_string(c.same_length);
    auto scores = both(randn(total, 3.0f)), probs = poisoned(total);
    const AttnMask mask{c.mlen, c.same_length, c.mem_len};
    cpu().attn_softmax_fwd(scores.c.data(), c.n, c.qlen, klen, 0.125f, mask, probs.c.data());
    dut().attn_softmax_fwd(scores.d.data(), c.n, c.qlen, klen, 0.125f, mask, probs.d.data());
    expect_close(probs, "attn_softmax_fwd" + sz);
    auto dp = both(randn(total)), ds = poisoned(total);
    cpu().attn_softmax_bwd(probs.c.data(), dp.c.data(), c.n, c.qlen, klen, 0.125f, ds.c.data());
    dut().attn_softmax_bwd(probs.d.data(), dp.d.data(), c.n, c.qlen, klen, 0.125f, ds.d.data());
    expect_close(ds, "attn_softmax_bwd" + sz);
    cpu().attn_softmax_bwd(probs.c.data(), dp.c.data(), c.n, c.qlen, klen, 0.125f, dp.c.data());  // aliasing
    dut().attn_softmax_bwd(probs.d.data(), dp.d.data(), c.n, c.qlen, klen, 0.125f, dp.d.data());
    expect_close(dp, "attn_softmax_bwd in place" + sz);
  }
}

// ---- gather / scatter --------------------------------------------------------------------

TEST_F(GpuOps, GatherScatterRows) {
  for (auto [vocab, n, cols] : {std::tuple<int32_t, int64_t, int64_t>{1, 1, 1}, {50, 37, 13}, {1000, 3072, 64},
                                {267, 96, 410}}) {
    const std::string sz = " vocab=" + std::to_string(vocab) + " n=" + std::to_string(n);
    auto table = both(randn(static_cast<int64_t>(vocab) * cols));
    auto idx = both(randint(n, 0, vocab));  // repeats
    auto rows = poisoned(n * cols);
    cpu().gather_rows(table.c.data(), idx.c.data(), n, cols, rows.c.data());
    dut().gather_rows(table.d.data(), idx.d.data(), n, cols, rows.d.data());
    expect_identical(rows, "gather_rows" + sz);
    auto grad = both(randn(static_cast<int64_t>(vocab) * cols));
    auto again = both(read(cpu(), grad.c));
    cpu().scatter_add_rows(rows.c.data(), idx.c.data(), n, cols, grad.c.data());
    dut().scatter_add_rows(rows.d.data(), idx.d.data(), n, cols, grad.d.data());
    // Sorted segments, no atomics: the CPU's additions in the CPU's order, bit for bit,
    // and a second run from the same start gives the same bits.
    expect_identical(grad, "scatter_add_rows" + sz);
    dut().scatter_add_rows(rows.d.data(), idx.d.data(), n, cols, again.d.data());
    EXPECT_EQ(read(dut(), again.d), read(dut(), grad.d)) << "scatter_add_rows repeated" << sz;
    // scatter_rows needs unique indices: a prefix of a permutation.
    std::vector<int32_t> perm(static_cast<size_t>(vocab));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng());
    const int64_t m = std::min<int64_t>(n, vocab);
    perm.resize(static_cast<size_t>(m));
    auto uidx = both(perm);
    auto dst = both(randn(static_cast<int64_t>(vocab) * cols));
    cpu().scatter_rows(rows.c.data(), uidx.c.data(), m, cols, dst.c.data());
    dut().scatter_rows(rows.d.data(), uidx.d.data(), m, cols, dst.d.data());
    expect_identical(dst, "scatter_rows" + sz);
  }
}

// ---- log-softmax and loss ----------------------------------------------------------------

TEST_F(GpuOps, LogSoftmaxPickAndBackward) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 3}, {33, 1000}, {5, 20003}, {3, 267735}}) {
    const std::string sz = " " + std::to_string(rows) + "x" + std::to_string(cols);
    auto logits = both(randn(rows * cols, 5.0f)), logp = poisoned(rows * cols);
    cpu().log_softmax(logits.c.data(), rows, cols, logp.c.data());
    dut().log_softmax(logits.d.data(), rows, cols, logp.d.data());
    expect_close(logp, "log_softmax" + sz);
    auto col_host = randint(rows, 0, static_cast<int32_t>(cols));
    if (rows > 1) col_host[1] = -1;  // term absent
    auto col = both(col_host);
    auto picked = poisoned(rows);
    cpu().pick_cols(logp.c.data(), col.c.data(), rows, cols, false, picked.c.data());
    dut().pick_cols(logp.d.data(), col.d.data(), rows, cols, false, picked.d.data());
    expect_close(picked, "pick_cols" + sz);
    auto acc = both(randn(rows));
    cpu().pick_cols(logp.c.data(), col.c.data(), rows, cols, true, acc.c.data());
    dut().pick_cols(logp.d.data(), col.d.data(), rows, cols, true, acc.d.data());
    expect_close(acc, "pick_cols accumulate" + sz);
    auto coef = both(randn(rows)), dlogits = poisoned(rows * cols);
    cpu().log_softmax_pick_bwd(logp.c.data(), col.c.data(), coef.c.data(), rows, cols, dlogits.c.data());
    dut().log_softmax_pick_bwd(logp.d.data(), col.d.data(), coef.d.data(), rows, cols, dlogits.d.data());
    expect_close(dlogits, "log_softmax_pick_bwd" + sz);
    cpu().log_softmax(logits.c.data(), rows, cols, logits.c.data());  // in place
    dut().log_softmax(logits.d.data(), rows, cols, logits.d.data());
    expect_close(logits, "log_softmax in place" + sz);
  }
}

TEST_F(GpuOps, BiasedLogSoftmaxPickAndBackward) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 3}, {33, 1000}, {5, 20003}, {30, 160000}}) {
    for (bool with_bias : {true, false}) {
      const std::string sz = " " + std::to_string(rows) + "x" + std::to_string(cols) + (with_bias ? " bias" : "");
      auto logits = both(randn(rows * cols, 5.0f)), bias = both(randn(cols));
      auto col_host = randint(rows, 0, static_cast<int32_t>(cols));
      if (rows > 1) col_host[1] = -1;  // term absent
      auto col = both(col_host);
      const float* bc = with_bias ? bias.c.data() : nullptr;
      const float* bd = with_bias ? bias.d.data() : nullptr;
      auto out = poisoned(rows), lse = poisoned(rows), acc = both(randn(rows));
      cpu().biased_log_softmax_pick(logits.c.data(), bc, col.c.data(), rows, cols, false, out.c.data(), lse.c.data());
      dut().biased_log_softmax_pick(logits.d.data(), bd, col.d.data(), rows, cols, false, out.d.data(), lse.d.data());
      expect_close(out, "biased_log_softmax_pick" + sz);
      expect_close(lse, "biased_log_softmax_pick lse" + sz);
      cpu().biased_log_softmax_pick(logits.c.data(), bc, col.c.data(), rows, cols, true, acc.c.data(), lse.c.data());
      dut().biased_log_softmax_pick(logits.d.data(), bd, col.d.data(), rows, cols, true, acc.d.data(), lse.d.data());
      expect_close(acc, "biased_log_softmax_pick accumulate" + sz);
      auto coef = both(randn(rows)), dlogits = poisoned(rows * cols);
      cpu().biased_log_softmax_pick_bwd(logits.c.data(), bc, lse.c.data(), col.c.data(), coef.c.data(), rows, cols,
                                        dlogits.c.data());
      dut().biased_log_softmax_pick_bwd(logits.d.data(), bd, lse.d.data(), col.d.data(), coef.d.data(), rows, cols,
                                        dlogits.d.data());
      expect_close(dlogits, "biased_log_softmax_pick_bwd" + sz);
    }
  }
}

// ---- reductions --------------------------------------------------------------------------

TEST_F(GpuOps, Reductions) {
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{(1 << 20) + 7}}) {
    auto host = randn(n);
    for (float& v : host) v += 0.25f;
    auto x = both(host);
    const double s_cpu = cpu().sum(x.c.data(), n), s_dut = dut().sum(x.d.data(), n);
    EXPECT_NEAR(s_dut, s_cpu, 1e-9 * (std::abs(s_cpu) + 1.0)) << "sum n=" << n;
    const double q_cpu = cpu().sum_squares(x.c.data(), n), q_dut = dut().sum_squares(x.d.data(), n);
    EXPECT_NEAR(q_dut, q_cpu, 1e-9 * q_cpu) << "sum_squares n=" << n;
  }
  // Slices: empty, one element, odd, spanning several multi-tensor chunks, with gaps.
  const std::vector<FlatSlice> slices = {{0, 0}, {0, 1}, {1, 17}, {20, 70001}, {70100, 3}, {70103, 200000}, {5, 10}};
  const int64_t total = 270103;
  auto x = both(randn(total));
  const auto want = cpu().sum_squares_slices(x.c.data(), slices);
  for (int repeat = 0; repeat < 2; ++repeat) {  // the second call reuses the cached plan
    const auto got = dut().sum_squares_slices(x.d.data(), slices);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-9 * (want[i] + 1e-30)) << "slice " << i;
  }
  EXPECT_TRUE(dut().sum_squares_slices(x.d.data(), {}).empty());
}

// ---- optimizers --------------------------------------------------------------------------

TEST_F(GpuOps, LambMatchesCpuOverSeveralSteps) {
  // Slices as a model's parameters: empty, scalar-like, odd, one spanning several
  // multi-tensor chunks, one all-zero (trust ratio 1), with a gap.
  const std::vector<FlatSlice> slices = {{0, 0}, {0, 1}, {1, 333}, {334, 150001}, {150335, 64}, {150400, 4097}};
  const int64_t total = 154497;
  auto p_host = randn(total, 0.05f);
  for (int64_t i = 150335; i < 150399; ++i) p_host[static_cast<size_t>(i)] = 0.0f;
  auto p = both(p_host), m = both(std::vector<float>(static_cast<size_t>(total), 0.0f)),
       v = both(std::vector<float>(static_cast<size_t>(total), 0.0f));
  for (int step = 1; step <= 3; ++step) {
    auto g = both(randn(total, 0.01f));
    OptimStep s;
    s.lr = 0.01;
    s.grad_scale = 0.5;
    s.weight_decay = step == 2 ? 0.01 : 0.0;
    s.step = step;
    cpu().lamb_step(p.c.data(), g.c.data(), m.c.data(), v.c.data(), slices, s);
    dut().lamb_step(p.d.data(), g.d.data(), m.d.data(), v.d.data(), slices, s);
    expect_close(p, "lamb p step " + std::to_string(step));
    expect_close(m, "lamb m step " + std::to_string(step));
    expect_close(v, "lamb v step " + std::to_string(step));
    expect_identical(g, "lamb clears g step " + std::to_string(step));
    const std::vector<float> g_after = read(dut(), g.d);
    for (const FlatSlice& sl : slices)
      for (int64_t i = sl.offset; i < sl.offset + sl.numel; ++i)
        ASSERT_EQ(g_after[static_cast<size_t>(i)], 0.0f) << "lamb leaves g[" << i << "]";
    EXPECT_NE(g_after[150399], 0.0f);  // the gap between slices is not LAMB's
  }
}

TEST_F(GpuOps, AdamSgdAdagradMatchCpu) {
  const int64_t n = 100003;
  auto p = both(randn(n, 0.1f)), m = both(std::vector<float>(static_cast<size_t>(n), 0.0f)),
       v = both(std::vector<float>(static_cast<size_t>(n), 0.0f));
  auto buf = both(std::vector<float>(static_cast<size_t>(n), 0.0f));
  auto acc = both(std::vector<float>(static_cast<size_t>(n), 0.1f));  // adagrad initial accumulator
  for (int step = 1; step <= 3; ++step) {
    const std::string st = " step " + std::to_string(step);
    const std::vector<float> g_host = randn(n, 0.01f);
    auto g = both(g_host);
    const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
    OptimStep s;
    s.lr = 1e-3;
    s.grad_scale = 0.25;
    s.eps = 1e-8;
    s.weight_decay = 0.01;
    s.step = step;
    cpu().adam_step(p.c.data(), g.c.data(), m.c.data(), v.c.data(), n, s);
    dut().adam_step(p.d.data(), g.d.data(), m.d.data(), v.d.data(), n, s);
    expect_close(p, "adam p" + st);
    expect_close(m, "adam m" + st);
    expect_close(v, "adam v" + st);
    EXPECT_EQ(read(dut(), g.d), zeros) << "adam clears g" << st;  // each step consumes its gradient
    g = both(g_host);
    s.momentum = 0.0;  // plain SGD: no buffer
    cpu().sgd_step(p.c.data(), g.c.data(), nullptr, n, s);
    dut().sgd_step(p.d.data(), g.d.data(), nullptr, n, s);
    expect_close(p, "sgd p" + st);
    EXPECT_EQ(read(dut(), g.d), zeros) << "sgd clears g" << st;
    g = both(g_host);
    s.momentum = 0.9;
    cpu().sgd_step(p.c.data(), g.c.data(), buf.c.data(), n, s);
    dut().sgd_step(p.d.data(), g.d.data(), buf.d.data(), n, s);
    expect_close(p, "sgd momentum p" + st);
    expect_close(buf, "sgd momentum buffer" + st);
    EXPECT_EQ(read(dut(), g.d), zeros) << "sgd momentum clears g" << st;
    g = both(g_host);
    s.eps = 1e-10;
    cpu().adagrad_step(p.c.data(), g.c.data(), acc.c.data(), n, s);
    dut().adagrad_step(p.d.data(), g.d.data(), acc.d.data(), n, s);
    expect_close(p, "adagrad p" + st);
    expect_close(acc, "adagrad sum" + st);
    EXPECT_EQ(read(dut(), g.d), zeros) << "adagrad clears g" << st;
  }
  OptimStep bad;
  bad.step = 0;
  EXPECT_THROW(dut().adam_step(p.d.data(), p.d.data(), m.d.data(), v.d.data(), n, bad), Error);
  bad.step = 1;
  bad.momentum = 0.9;
  EXPECT_THROW(dut().sgd_step(p.d.data(), p.d.data(), nullptr, n, bad), Error);
}

// ---- step scalars ------------------------------------------------------------------------

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

// The device-result reductions run the host versions' kernels: the same bits as the
// backend's own sum / sum_squares (and the CPU's within the reductions' tolerance).
TEST_F(GpuOps, DeviceResultReductionsEqualTheHostOnes) {
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1000}, int64_t{(1 << 20) + 7}}) {
    auto host = randn(std::max<int64_t>(n, 1));
    for (float& v : host) v += 0.25f;
    auto x = both(host);
    Tensor<double> out = on(dut(), std::vector<double>{-1.0, -1.0});
    dut().sum_to_device(x.d.data(), n, out.data());
    dut().sum_squares_to_device(x.d.data(), n, out.data() + 1);
    const std::vector<double> got = read(dut(), out);
    EXPECT_TRUE(same_bits(got[0], dut().sum(x.d.data(), n))) << "sum n=" << n;
    EXPECT_TRUE(same_bits(got[1], dut().sum_squares(x.d.data(), n))) << "sum_squares n=" << n;
    const double s_cpu = cpu().sum(x.c.data(), n), q_cpu = cpu().sum_squares(x.c.data(), n);
    EXPECT_NEAR(got[0], s_cpu, 1e-9 * (std::abs(s_cpu) + 1.0)) << "sum n=" << n;
    EXPECT_NEAR(got[1], q_cpu, 1e-9 * (q_cpu + 1e-30)) << "sum_squares n=" << n;
  }
}

// One thread does the host's double arithmetic (step_scalar_math.h): every scalar equals
// the CPU backend's bit for bit over a sequence of steps with clipping, a non-finite loss
// and gradient, and fp16 mode.
TEST_F(GpuOps, StepScalarsMatchTheCpuBitForBit) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  auto scalars = both(std::vector<double>(StepScalars::kCount, 0.0));
  struct Step {
    std::vector<double> chunk_sums;
    double sum_squares;
    bool check_finite;
  };
  const std::vector<Step> steps = {{{1234.5, 99.25}, 0.5625, true}, {{7.0, 3.0e-3}, 1e-8, true},
                                   {{nan, 1.0}, 4.0, true},         {{2.0, 1.0}, inf, true},
                                   {{1.0, 1.0}, 9.0, true},         {{inf, 1.0}, nan, false}};
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& st = steps[i];
    auto sums = both(st.chunk_sums);
    StepLossArgs la;
    la.chunks = 2;
    la.tokens_per_chunk = 96;
    la.step = static_cast<int64_t>(i) + 1;
    la.new_interval = i == 0 || i == 4;
    la.check_finite = st.check_finite;
    cpu().step_loss_update(sums.c.data(), la, scalars.c.data());
    dut().step_loss_update(sums.d.data(), la, scalars.d.data());
    const std::vector<double> ss = {st.sum_squares};
    cpu().upload(scalars.c.data() + StepScalars::kSumSquares, ss.data(), sizeof(double));
    dut().upload(scalars.d.data() + StepScalars::kSumSquares, ss.data(), sizeof(double));
    GradFactorArgs ga;
    ga.unscale = 1.0 / 3.0;
    ga.clip = 0.25;
    ga.step = la.step;
    ga.check_finite = st.check_finite;
    cpu().step_grad_factor(ga, scalars.c.data());
    dut().step_grad_factor(ga, scalars.d.data());
    const std::vector<double> want = read(cpu(), scalars.c), got = read(dut(), scalars.d);
    for (int k = 0; k < StepScalars::kCount; ++k)
      EXPECT_TRUE(same_bits(got[static_cast<size_t>(k)], want[static_cast<size_t>(k)]) ||
                  (std::isnan(got[static_cast<size_t>(k)]) && std::isnan(want[static_cast<size_t>(k)])))
          << "step " << i + 1 << " scalar " << k << ": " << got[static_cast<size_t>(k)] << " vs "
          << want[static_cast<size_t>(k)];
  }
  const std::vector<double> last = read(dut(), scalars.d);
  EXPECT_EQ(last[StepScalars::kBadLossStep], 3.0);
  EXPECT_EQ(last[StepScalars::kBadGradStep], 4.0);
}

// The optimizers read their factor on the device; a non-finite one skips the update
// (parameters and state unchanged) and still clears the gradient.
TEST_F(GpuOps, OptimizersTakeTheirFactorFromTheDeviceAndSkipNonFiniteOnes) {
  const std::vector<FlatSlice> slices = {{0, 70001}, {70001, 999}};
  const int64_t n = 71000;
  const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
  for (double factor : {0.37, std::numeric_limits<double>::quiet_NaN()}) {
    const bool skip = std::isnan(factor);
    auto f = both(std::vector<double>{factor});
    const std::vector<float> p_host = randn(n, 0.1f), g_host = randn(n, 0.01f);
    auto p = both(p_host), g = both(g_host), m = both(randn(n, 0.01f));
    auto v = both(std::vector<float>(zeros.size(), 0.01f));
    const std::vector<float> m_host = read(cpu(), m.c);
    OptimStep s;
    s.lr = 1e-3;
    s.grad_scale = 1e6;  // ignored: the device factor is used
    s.step = 2;
    s.weight_decay = 0.01;
    for (int kind = 0; kind < 4; ++kind) {
      const std::string what = std::string(skip ? "skipped " : "") + "optimizer " + std::to_string(kind);
      g = both(g_host);
      s.device_grad_scale = f.c.data();
      OptimStep sd = s;
      sd.device_grad_scale = f.d.data();
      if (kind == 0) {
        cpu().lamb_step(p.c.data(), g.c.data(), m.c.data(), v.c.data(), slices, s);
        dut().lamb_step(p.d.data(), g.d.data(), m.d.data(), v.d.data(), slices, sd);
      } else if (kind == 1) {
        cpu().adam_step(p.c.data(), g.c.data(), m.c.data(), v.c.data(), n, s);
        dut().adam_step(p.d.data(), g.d.data(), m.d.data(), v.d.data(), n, sd);
      } else if (kind == 2) {
        s.momentum = sd.momentum = 0.9;
        cpu().sgd_step(p.c.data(), g.c.data(), m.c.data(), n, s);
        dut().sgd_step(p.d.data(), g.d.data(), m.d.data(), n, sd);
        s.momentum = 0.0;
      } else {
        cpu().adagrad_step(p.c.data(), g.c.data(), v.c.data(), n, s);
        dut().adagrad_step(p.d.data(), g.d.data(), v.d.data(), n, sd);
      }
      expect_close(p, what + " p");
      expect_close(m, what + " m");
      expect_close(v, what + " v");
      EXPECT_EQ(read(dut(), g.d), zeros) << what << " clears g";
      if (skip) {
        EXPECT_EQ(read(dut(), p.d), p_host) << what;
        EXPECT_EQ(read(dut(), m.d), m_host) << what;
      }
    }
  }
}

}  // namespace
}  // namespace txl
