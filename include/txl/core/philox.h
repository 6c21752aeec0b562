// Philox4x32-10 counter-based generator (Salmon et al., SC'11). Pure function of
// (key, counter), so CPU and CUDA produce identical dropout masks for the same seed,
// and a mask element depends only on its global coordinates, not on the rank count.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define TXL_HD __host__ __device__ __forceinline__
#else
#define TXL_HD inline
#endif

namespace txl {

struct Philox4 {
  uint32_t v[4];
};

TXL_HD uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// counter: 128 bits as four words; key: 64 bits as two words.
TXL_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = philox_mulhilo(kM0, ctr.v[0], &hi0);
    const uint32_t lo1 = philox_mulhilo(kM1, ctr.v[2], &hi1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// Identifies one dropout application: the run's seed, the optimizer step, and the site
// (which tensor in which layer; see model code for the numbering).
struct DropoutKey {
  uint64_t seed = 0;
  uint64_t step = 0;
  uint32_t site = 0;
};

// A tensor viewed as [outer, batch, inner] whose batch axis is a window
// [batch_offset, batch_offset + batch) of a global batch of batch_global streams.
// The mask element of (o, b, i) is keyed by its global coordinate, so splitting the batch
// across ranks or chunks gives the same masks as one big batch.
struct BatchLayout {
  int64_t outer = 1, batch = 1, inner = 1;
  int64_t batch_offset = 0, batch_global = 1;
};

// Uniform in [0, 1) for global element index `g` of the site.
TXL_HD float philox_uniform(const DropoutKey& key, uint64_t g) {
  const uint64_t block = g >> 2;
  Philox4 ctr{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
               static_cast<uint32_t>(key.step) ^ (key.site * 0x85EBCA6Bu),
               static_cast<uint32_t>(key.step >> 32) ^ key.site}};
  const Philox4 r = philox4x32_10(ctr, static_cast<uint32_t>(key.seed), static_cast<uint32_t>(key.seed >> 32));
  return static_cast<float>(r.v[g & 3] >> 8) * (1.0f / 16777216.0f);
}

// Global element index of local element `local` under `layout`.
TXL_HD uint64_t dropout_global_index(const BatchLayout& layout, int64_t local) {
  const int64_t i = local % layout.inner;
  const int64_t rest = local / layout.inner;
  const int64_t b = rest % layout.batch;
  const int64_t o = rest / layout.batch;
  return static_cast<uint64_t>((o * layout.batch_global + b + layout.batch_offset) * layout.inner + i);
}

// True when element `local` is kept (not dropped) at drop probability p.
TXL_HD bool dropout_keep(const DropoutKey& key, const BatchLayout& layout, int64_t local, float p) {
  return philox_uniform(key, dropout_global_index(layout, local)) >= p;
}

}  // namespace txl
