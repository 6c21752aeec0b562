// GEMM precision modes: TF32, bf16 and fp16 tensor-core math with float32 accumulation
// stay within the expected error of their operand rounding, and bf16/fp16 really are in
// use (the error is above float32 level).
#include "gpu_test_util.h"

namespace txl {
namespace {

using gpu_test::GpuTest;
using gpu_test::rel_error;

TEST(GemmPrecision, ParsesConfigNames) {
  EXPECT_EQ(parse_gemm_precision("fp32"), GemmPrecision::kFp32);
  EXPECT_EQ(parse_gemm_precision("tf32"), GemmPrecision::kTf32);
  EXPECT_EQ(parse_gemm_precision("bf16"), GemmPrecision::kBf16);
  EXPECT_EQ(parse_gemm_precision("fp16"), GemmPrecision::kFp16);
  EXPECT_STREQ(gemm_precision_name(GemmPrecision::kBf16), "bf16");
  EXPECT_THROW(parse_gemm_precision("fp64"), Error);
}

TEST(GemmPrecision, OperandRoundingEmulation) {  // the stand-in's rounding itself
  EXPECT_EQ(gpu_test::round_mantissa(1.0f + 1.0f / 256, 7), 1.0f);  // tie: to even
  EXPECT_EQ(gpu_test::round_mantissa(1.0f + 3.0f / 256, 7), 1.0f + 4.0f / 256);
  EXPECT_EQ(gpu_test::round_mantissa(1.0f + 1.0f / 128, 7), 1.0f + 1.0f / 128);
  EXPECT_EQ(gpu_test::round_mantissa(-3.0f - 1.0f / 4096, 10), -3.0f);
  EXPECT_EQ(gpu_test::round_mantissa(0.1f, 23), 0.1f);
}

class GpuPrecision : public GpuTest {};

// Relative error of a product of operands rounded to a format with unit roundoff u (per
// operand RMS about u/sqrt(3), so about 0.8u for the product): TF32 and fp16 keep 10
// mantissa bits (u = 2^-11 rounding, 2^-10 if truncating), bf16 7 (u = 2^-8 / 2^-9).
// Bounds: tf32/fp16 2e-3, bf16 1e-2, with a factor of about 2.5 to spare.
TEST_F(GpuPrecision, MixedPrecisionGemmsWithinOperandRounding) {
  struct Mode {
    GemmPrecision p;
    double tol;
    const char* name;
  };
  for (const Mode& mode : {Mode{GemmPrecision::kTf32, 2e-3, "cuda-float(tf32 gemm)"},
                           Mode{GemmPrecision::kBf16, 1e-2, "cuda-float(bf16 gemm)"},
                           Mode{GemmPrecision::kFp16, 2e-3, "cuda-float(fp16 gemm)"}}) {
    auto ops = make_dut(mode.p);
    if (!gpu_test::cpu_stand_in()) {
      EXPECT_STREQ(ops->name(), mode.name);
    }
    for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{128, 96, 64}, {33, 65, 17}, {257, 130, 300}}) {
      const auto a = randn(m * k), b = randn(n * k);
      auto Ac = on(cpu(), a), Bc = on(cpu(), b), Cc = on(cpu(), std::vector<float>(static_cast<size_t>(m * n)));
      auto Ad = on(*ops, a), Bd = on(*ops, b), Cd = on(*ops, std::vector<float>(static_cast<size_t>(m * n), gpu_test::kNaN));
      cpu().gemm(Trans::kNo, Trans::kYes, m, n, k, 1.0f, Ac.data(), k, Bc.data(), k, 0.0f, Cc.data(), n);
      ops->gemm(Trans::kNo, Trans::kYes, m, n, k, 1.0f, Ad.data(), k, Bd.data(), k, 0.0f, Cd.data(), n);
      const double err = rel_error(read(*ops, Cd), read(cpu(), Cc));
      EXPECT_LE(err, mode.tol) << mode.name << " m=" << m << " n=" << n << " k=" << k;
      // bf16/fp16 operands are always rounded (explicit copies); TF32 only *allows*
      // cuBLAS to use tensor cores, which it may not do for small products.
      if (mode.p != GemmPrecision::kTf32) {
        EXPECT_GT(err, 1e-6) << mode.name << ": no sign of reduced-precision operands";
      }
    }
    // Batched (attention) products use the same mode.
    const int64_t batch = 8, q = 20, kl = 36, d = 64;
    const auto qh = randn(batch * q * d), kh = randn(batch * kl * d);
    auto Qc = on(cpu(), qh), Kc = on(cpu(), kh), Sc = on(cpu(), std::vector<float>(static_cast<size_t>(batch * q * kl)));
    auto Qd = on(*ops, qh), Kd = on(*ops, kh),
         Sd = on(*ops, std::vector<float>(static_cast<size_t>(batch * q * kl), gpu_test::kNaN));
    cpu().gemm_strided_batched(Trans::kNo, Trans::kYes, q, kl, d, 0.125f, Qc.data(), d, q * d, Kc.data(), d, kl * d,
                               0.0f, Sc.data(), kl, q * kl, batch);
    ops->gemm_strided_batched(Trans::kNo, Trans::kYes, q, kl, d, 0.125f, Qd.data(), d, q * d, Kd.data(), d, kl * d,
                              0.0f, Sd.data(), kl, q * kl, batch);
    const double err = rel_error(read(*ops, Sd), read(cpu(), Sc));
    EXPECT_LE(err, mode.tol) << mode.name << " batched";
    if (mode.p != GemmPrecision::kTf32) {
      EXPECT_GT(err, 1e-6) << mode.name << " batched";
    }
  }
}

TEST_F(GpuPrecision, BackendSwitchesPrecisionAndSaysSo) {
  if (!require_cuda()) GTEST_SKIP() << "skipped: needs the CUDA backend";
  CudaBackend& backend = *as_cuda_backend(dut());
  EXPECT_STREQ(dut().name(), "cuda-float(fp32)");
  backend.set_precision(GemmPrecision::kTf32);
  EXPECT_EQ(backend.precision(), GemmPrecision::kTf32);
  EXPECT_STREQ(dut().name(), "cuda-float(tf32 gemm)");
  backend.set_precision(GemmPrecision::kFp32);
  EXPECT_STREQ(dut().name(), "cuda-float(fp32)");
}

}  // namespace
}  // namespace txl
