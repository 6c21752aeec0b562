// The caching arena's bookkeeping, on host memory (runs without a GPU), and on the device
// the promise it exists for: a repeated step never reaches cudaMalloc.
#include <cstring>
#include <map>
#include <set>

#include "gpu_test_util.h"
#include "txl/cuda/caching_arena.h"

namespace txl {
namespace {

using cuda::CachingArena;

// Host raw memory that counts reservations and can refuse them past a budget.
class CountingRawMemory final : public cuda::RawMemory {
 public:
  explicit CountingRawMemory(size_t budget = SIZE_MAX) : budget_(budget) {}
  void* reserve(size_t bytes) override {
    if (reserved_ + bytes > budget_) return nullptr;
    void* p = inner_->reserve(bytes);
    reserved_ += bytes;
    sizes_[p] = bytes;
    ++reserves_;
    return p;
  }
  void release(void* ptr) override {
    ++releases_;
    reserved_ -= sizes_.at(ptr);
    sizes_.erase(ptr);
    inner_->release(ptr);
  }
  Device device() const override { return Device::kCPU; }
  int reserves_ = 0, releases_ = 0;

 private:
  std::unique_ptr<cuda::RawMemory> inner_ = cuda::make_host_raw_memory();
  size_t budget_;
  size_t reserved_ = 0;
  std::map<void*, size_t> sizes_;
};

TEST(CachingArena, SizeClasses) {
  EXPECT_EQ(CachingArena::size_class(0), 512u);
  EXPECT_EQ(CachingArena::size_class(1), 512u);
  EXPECT_EQ(CachingArena::size_class(512), 512u);
  EXPECT_EQ(CachingArena::size_class(513), 1024u);
  EXPECT_EQ(CachingArena::size_class(4096), 4096u);
  EXPECT_EQ(CachingArena::size_class(4097), 4608u);  // 4096 + 4096/8
  EXPECT_EQ(CachingArena::size_class(1 << 20), size_t{1} << 20);
  EXPECT_EQ(CachingArena::size_class((1 << 20) + 1), (size_t{1} << 20) + (size_t{1} << 17));
  for (size_t bytes : {size_t{3}, size_t{5000}, size_t{123457}, size_t{10000019}}) {
    const size_t c = CachingArena::size_class(bytes);
    EXPECT_GE(c, bytes);
    EXPECT_EQ(c % CachingArena::kAlignment, 0u);
    EXPECT_LE(static_cast<double>(c), 1.125 * static_cast<double>(bytes) + 512.0) << bytes;
  }
}

TEST(CachingArena, SteadyStateNeedsNoNewMemory) {
  auto raw = std::make_unique<CountingRawMemory>();
  CountingRawMemory* counter = raw.get();
  CachingArena arena(std::move(raw), 0, size_t{1} << 20);
  const std::vector<size_t> step = {100, 5000, 70000, 300000, 5000, 2 << 20, 17};
  auto run_step = [&] {
    std::vector<std::pair<void*, size_t>> held;
    for (size_t bytes : step) held.emplace_back(arena.allocate(bytes), bytes);
    // distinct, aligned, writable
    std::set<void*> distinct;
    for (auto& [p, bytes] : held) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % CachingArena::kAlignment, 0u);
      EXPECT_TRUE(distinct.insert(p).second);
      std::memset(p, 0xab, bytes);
    }
    for (auto it = held.rbegin(); it != held.rend(); ++it) arena.deallocate(it->first, it->second);
  };
  run_step();
  const int after_first = counter->reserves_;
  const auto s1 = arena.stats();
  for (int i = 0; i < 5; ++i) run_step();
  EXPECT_EQ(counter->reserves_, after_first);
  const auto s = arena.stats();
  EXPECT_EQ(s.raw_reservations, s1.raw_reservations);
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.allocations, 6 * static_cast<int64_t>(step.size()));
  EXPECT_EQ(s.cache_hits, 5 * static_cast<int64_t>(step.size()));
  EXPECT_GE(s.peak_in_use, size_t{2} << 20);
}

TEST(CachingArena, CarvesSmallBlocksFromChunksAndGivesBigOnesTheirOwn) {
  auto raw = std::make_unique<CountingRawMemory>();
  CountingRawMemory* counter = raw.get();
  const size_t chunk = size_t{1} << 20;
  CachingArena arena(std::move(raw), 0, chunk);
  void* a = arena.allocate(1000);
  void* b = arena.allocate(1000);
  EXPECT_EQ(counter->reserves_, 1);  // both from one chunk
  EXPECT_EQ(static_cast<char*>(b) - static_cast<char*>(a), 1024);
  void* big = arena.allocate(chunk);  // more than half a chunk: a raw block of its own
  EXPECT_EQ(counter->reserves_, 2);
  arena.deallocate(big, chunk);
  void* big2 = arena.allocate(chunk - 100);  // same size class: reused
  EXPECT_EQ(big2, big);
  EXPECT_EQ(counter->reserves_, 2);
  arena.deallocate(big2, chunk - 100);
  arena.deallocate(a, 1000);
  arena.deallocate(b, 1000);
  EXPECT_EQ(arena.stats().in_use, 0u);
}

TEST(CachingArena, OutOfMemoryGivesBackCachedBigBlocksThenFailsClearly) {
  const size_t chunk = size_t{1} << 20;
  auto raw = std::make_unique<CountingRawMemory>(4 * chunk);
  CountingRawMemory* counter = raw.get();
  CachingArena arena(std::move(raw), 0, chunk);
  void* big = arena.allocate(3 * chunk);
  arena.deallocate(big, 3 * chunk);  // cached, 3 MiB of the 4 MiB budget held
  void* other = arena.allocate(size_t{5} << 19);  // 2.5 MiB: fits only after the cache is released
  EXPECT_NE(other, nullptr);
  EXPECT_EQ(counter->releases_, 1);
  try {
    arena.allocate(3 * chunk);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of cpu memory"), std::string::npos) << e.what();
  }
  arena.deallocate(other, size_t{5} << 19);
}

// Out of memory while a graph is captured: the cached big block is not freed (cudaFree
// is illegal during a capture and the block was lost); after the capture it is.
TEST(CachingArena, OutOfMemoryDuringCaptureKeepsCachedBlocks) {
  const size_t chunk = size_t{1} << 20;
  auto raw = std::make_unique<CountingRawMemory>(4 * chunk);
  CountingRawMemory* counter = raw.get();
  CachingArena arena(std::move(raw), 0, chunk);
  void* big = arena.allocate(3 * chunk);
  arena.deallocate(big, 3 * chunk);  // cached
  const int pool = arena.open_private_pool();
  try {
    arena.allocate(size_t{5} << 19);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("during a graph capture"), std::string::npos) << e.what();
  }
  EXPECT_EQ(counter->releases_, 0);
  EXPECT_EQ(arena.stats().reserved, 3 * chunk);  // still accounted, still reusable
  arena.close_private_pool();
  arena.release_private_pool(pool);
  void* again = arena.allocate(3 * chunk);  // the cached block, not a new reservation
  EXPECT_EQ(again, big);
  arena.deallocate(again, 3 * chunk);
  void* other = arena.allocate(size_t{5} << 19);  // outside a capture the cache is given back
  EXPECT_EQ(counter->releases_, 1);
  arena.deallocate(other, size_t{5} << 19);
}

TEST(CachingArena, PrivatePoolKeepsGraphMemoryUntilReleased) {
  CachingArena arena(cuda::make_host_raw_memory(), 0, size_t{1} << 20);
  void* warm = arena.allocate(4096);  // a cached block the capture may take
  arena.deallocate(warm, 4096);
  void* before = arena.allocate(1024);  // allocated before the capture, freed inside it
  const int pool = arena.open_private_pool();
  arena.deallocate(before, 1024);  // the captured work may use it: reserved for the pool
  void* t1 = arena.allocate(4096);  // taken from the common cache, now the pool's
  EXPECT_EQ(t1, warm);
  arena.deallocate(t1, 4096);       // freed inside the capture: back to the pool
  void* t2 = arena.allocate(4096);  // reused inside the capture
  EXPECT_EQ(t2, t1);
  void* kept = arena.allocate(2048);  // outlives the capture (e.g. an output)
  arena.deallocate(t2, 4096);
  arena.close_private_pool();
  void* outside = arena.allocate(4096);  // must not get the pool's block
  EXPECT_NE(outside, t1);
  arena.deallocate(kept, 2048);  // freed after capture while the pool lives: stays reserved
  void* outside2 = arena.allocate(2048);
  EXPECT_NE(outside2, kept);
  void* outside3 = arena.allocate(1024);
  EXPECT_NE(outside3, before);
  arena.release_private_pool(pool);
  void* again = arena.allocate(4096);  // pool blocks are common again
  EXPECT_EQ(again, t1);
  void* again2 = arena.allocate(2048);
  EXPECT_EQ(again2, kept);
  void* again3 = arena.allocate(1024);
  EXPECT_EQ(again3, before);
  for (auto [p, n] : {std::pair<void*, size_t>{outside, 4096}, {outside2, 2048}, {outside3, 1024}, {again, 4096},
                      {again2, 2048}, {again3, 1024}})
    arena.deallocate(p, n);
  EXPECT_EQ(arena.stats().in_use, 0u);
  EXPECT_THROW({
    arena.open_private_pool();
    arena.open_private_pool();
  }, Error);
}

TEST(CachingArena, UnknownPointerIsIgnored) {
  CachingArena arena(cuda::make_host_raw_memory());
  int x = 0;
  arena.deallocate(&x, 4);  // reported on stderr, no crash, no change
  EXPECT_EQ(arena.stats().in_use, 0u);
}

// On the device: a whole sequence of ops repeated reaches cudaMalloc only the first time.
class GpuArena : public gpu_test::GpuTest {};

TEST_F(GpuArena, RepeatedStepDoesNotCallCudaMalloc) {
  if (!require_cuda()) GTEST_SKIP() << "skipped: needs the CUDA backend";
  CudaBackend& backend = *as_cuda_backend(dut());
  const int64_t rows = 512, cols = 410;
  auto x = on(dut(), randn(rows * cols)), gamma = on(dut(), randn(cols)), beta = on(dut(), randn(cols));
  auto dgamma = on(dut(), randn(cols)), dbeta = on(dut(), randn(cols));
  const std::vector<FlatSlice> slices = {{0, 1000}, {1000, 200000}};
  auto p = on(dut(), randn(201000)), g = on(dut(), randn(201000)), m = on(dut(), randn(201000)),
       v = on(dut(), uniform(201000, 0.0f, 1.0f));
  auto step = [&] {
    Tensor<float> y(Shape{rows, cols}, dut().allocator()), mean(Shape{rows}, dut().allocator()),
        rstd(Shape{rows}, dut().allocator()), dx(Shape{rows, cols}, dut().allocator());
    dut().layernorm_fwd(rows, cols, x.data(), gamma.data(), beta.data(), 1e-5f, y.data(), mean.data(), rstd.data());
    dut().layernorm_bwd(rows, cols, y.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                        dgamma.data(), dbeta.data());
    dut().bias_grad(dx.data(), dbeta.data(), rows, cols);
    OptimStep s;
    s.lr = 1e-3;
    dut().lamb_step(p.data(), g.data(), m.data(), v.data(), slices, s);
    (void)dut().sum_squares_slices(g.data(), slices);
    return dut().sum_squares(dx.data(), rows * cols);
  };
  step();
  const auto before = backend.arena().stats();
  for (int i = 0; i < 3; ++i) step();
  const auto after = backend.arena().stats();
  EXPECT_EQ(after.raw_reservations, before.raw_reservations);
  EXPECT_GT(after.cache_hits, before.cache_hits);
}

}  // namespace
}  // namespace txl
