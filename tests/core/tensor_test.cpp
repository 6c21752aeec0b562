#include <gtest/gtest.h>

#include "txl/core/param_store.h"
#include "txl/core/philox.h"
#include "txl/core/tensor.h"

namespace txl {
namespace {

TEST(Tensor, SliceAndReshapeShareStorage) {
  Tensor<float> t({4, 3}, cpu_allocator());
  for (int i = 0; i < 12; ++i) t.data()[i] = static_cast<float>(i);
  Tensor<float> s = t.slice(1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(s.data()[0], 3.0f);
  EXPECT_EQ(t.reshaped({2, 6}).dim(1), 6);
  EXPECT_THROW(t.reshaped({5, 2}), Error);
  EXPECT_THROW(t.slice(2, 5), Error);
}

TEST(Philox, KnownAnswer) {
  // Random123's published known-answer vector for philox4x32-10 with all-ones input.
  Philox4 r = philox4x32_10(Philox4{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(r.v[0], 0x408f276du);
  EXPECT_EQ(r.v[1], 0x41c83b0eu);
  EXPECT_EQ(r.v[2], 0xa20bc7c6u);
  EXPECT_EQ(r.v[3], 0x6d5451fdu);
}

TEST(Philox, MaskIndependentOfBatchSplit) {
  DropoutKey key{1234, 7, 3};
  BatchLayout whole{5, 8, 6, 0, 8};
  BatchLayout half{5, 4, 6, 4, 8};  // streams 4..7 only
  for (int64_t o = 0; o < 5; ++o)
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t i = 0; i < 6; ++i) {
        const int64_t local_whole = (o * 8 + b + 4) * 6 + i;
        const int64_t local_half = (o * 4 + b) * 6 + i;
        EXPECT_EQ(dropout_keep(key, whole, local_whole, 0.3f), dropout_keep(key, half, local_half, 0.3f));
      }
}

TEST(ParamStore, FlatLayoutInRegistrationOrder) {
  auto ops = make_cpu_ops<float>();
  ParamStore<float> ps;
  ps.add("a", {2, 3}, ParamInit::kWeight);
  ps.add("b", {4}, ParamInit::kZero);
  ps.allocate(*ops);
  EXPECT_EQ(ps.total_numel(), 10);
  EXPECT_EQ(ps.info(1).slice.offset, 6);
  EXPECT_EQ(ps.id("b"), 1);
  EXPECT_EQ(ps.find("c"), -1);
  ps.initialize(InitSpec{}, 1, *ops);
  EXPECT_NE(ps.param(0).data()[0], 0.0f);
  EXPECT_EQ(ps.param(1).data()[3], 0.0f);
}

}  // namespace
}  // namespace txl
