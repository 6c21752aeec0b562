// resolve_device_precision: the device/precision rules txl_train and txl_eval share.
#include "txl/config/device_precision.h"

#include <gtest/gtest.h>

#include "txl/core/error.h"

namespace txl {
namespace {

std::string error_of(std::string device, std::string precision, bool fp16) {
  try {
    resolve_device_precision(device, precision, fp16, "eval config");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DevicePrecision, Fp16FlagBecomesThePrecision) {
  std::string device = "cuda", precision = "fp32";
  bool fp16 = true;
  resolve_device_precision(device, precision, fp16, "config");
  EXPECT_EQ(precision, "fp16");
  EXPECT_FALSE(fp16);
}

TEST(DevicePrecision, EachBadCombinationGetsOneLineNamingTheKey) {
  EXPECT_EQ(error_of("cuda", "bf16", true), "eval config: fp16: fp16: true contradicts precision: bf16");
  EXPECT_EQ(error_of("gpu", "fp32", false),
            "eval config: device: unknown value 'gpu' (expected cpu | cuda; closest: 'cpu')");
  EXPECT_EQ(error_of("cuda", "fp8", false),
            "eval config: precision: unknown value 'fp8' (expected fp32 | tf32 | fp16 | bf16; closest: 'fp32')");
  EXPECT_EQ(error_of("cpu", "bf16", false),
            "eval config: precision: bf16 needs device: cuda (the CPU backend computes in fp32 only)");
  EXPECT_EQ(error_of("cpu", "fp32", true),
            "eval config: precision: fp16 needs device: cuda (the CPU backend computes in fp32 only)");
  EXPECT_EQ(error_of("cpu", "fp32", false), "");
  EXPECT_EQ(error_of("cuda", "tf32", false), "");
}

}  // namespace
}  // namespace txl
