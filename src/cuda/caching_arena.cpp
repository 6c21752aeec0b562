#include "txl/cuda/caching_arena.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>

#include "txl/cuda/check.h"

namespace txl::cuda {
namespace {

class CudaRawMemory final : public RawMemory {
 public:
  explicit CudaRawMemory(int device) : device_(device) {}
  void* reserve(size_t bytes) override {
    TXL_CUDA_CHECK(cudaSetDevice(device_));
    void* p = nullptr;
    // The arena may grow while a CUDA graph is being captured (cuda_graph.h). The block
    // outlives the graph, so cudaMalloc is safe here: say so to the capture machinery.
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    TXL_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    const cudaError_t status = cudaMalloc(&p, bytes);
    TXL_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the sticky-free error so it does not surface later
      return nullptr;
    }
    TXL_CUDA_CHECK(status);
    return p;
  }
  void release(void* ptr) override {
    // Called from destructors: report, never throw.
    cudaSetDevice(device_);
    const cudaError_t status = cudaFree(ptr);
    if (status != cudaSuccess) std::fprintf(stderr, "warning: cudaFree failed: %s\n", cudaGetErrorString(status));
  }
  Device device() const override { return Device::kCUDA; }

 private:
  int device_;
};

class HostRawMemory final : public RawMemory {
 public:
  void* reserve(size_t bytes) override { return std::aligned_alloc(CachingArena::kAlignment, bytes); }
  void release(void* ptr) override { std::free(ptr); }
  Device device() const override { return Device::kCPU; }
};

double mib(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

}  // namespace

std::unique_ptr<RawMemory> make_cuda_raw_memory(int device) { return std::make_unique<CudaRawMemory>(device); }
std::unique_ptr<RawMemory> make_host_raw_memory() { return std::make_unique<HostRawMemory>(); }

CachingArena::CachingArena(std::unique_ptr<RawMemory> raw, size_t initial_bytes, size_t chunk_bytes)
    : raw_(std::move(raw)), chunk_bytes_(size_class(chunk_bytes)) {
  TXL_CHECK(raw_ != nullptr, "CachingArena: no raw memory source");
  if (initial_bytes > 0) {
    const size_t bytes = size_class(initial_bytes);
    void* p = reserve_raw(bytes);
    if (!p) failf("CachingArena: cannot reserve the initial {:.1f} MiB of {} memory", mib(bytes), device_name(raw_->device()));
    chunks_.push_back(Chunk{static_cast<char*>(p), bytes, 0});
  }
}

CachingArena::~CachingArena() {
  if (!live_.empty())
    std::fprintf(stderr, "warning: CachingArena destroyed with %zu live blocks (%.1f MiB); they now dangle\n",
                 live_.size(), mib(stats_.in_use));
  for (const Chunk& c : chunks_) raw_->release(c.base);
  for (const auto& [ptr, size] : dedicated_) raw_->release(ptr);
}

size_t CachingArena::size_class(size_t bytes) {
  if (bytes <= 4096) return std::max<size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  const size_t top = std::bit_floor(bytes);  // >= 4096
  const size_t step = top / 8;               // >= 512, a power of two
  return (bytes + step - 1) / step * step;
}

Device CachingArena::device() const { return raw_->device(); }

void* CachingArena::reserve_raw(size_t bytes) {
  void* p = raw_->reserve(bytes);
  // Cached big blocks are given back only outside a graph capture: cudaFree is not
  // allowed while a stream is captured (it would fail, and the block would be lost).
  if (!p && open_pool_ == 0 && release_cached_dedicated()) p = raw_->reserve(bytes);
  if (p) {
    stats_.reserved += bytes;
    ++stats_.raw_reservations;
  }
  return p;
}

bool CachingArena::release_cached_dedicated() {
  bool released = false;
  for (auto& [size, list] : free_) {
    auto keep = list.begin();
    for (void* p : list) {
      auto it = dedicated_.find(p);
      if (it != dedicated_.end()) {
        raw_->release(p);
        stats_.reserved -= it->second;
        dedicated_.erase(it);
        released = true;
      } else {
        *keep++ = p;
      }
    }
    list.erase(keep, list.end());
  }
  return released;
}

void* CachingArena::take_new_block(size_t size) {
  for (Chunk& c : chunks_) {  // first fit in the remainders of existing chunks (incl. a preallocated one)
    if (c.size - c.used >= size) {
      void* p = c.base + c.used;
      c.used += size;
      return p;
    }
  }
  if (size > chunk_bytes_ / 2) {  // big blocks own a raw block (and can be given back)
    void* p = reserve_raw(size);
    if (p) dedicated_.emplace(p, size);
    return p;
  }
  void* base = reserve_raw(chunk_bytes_);
  if (!base) return nullptr;
  chunks_.push_back(Chunk{static_cast<char*>(base), chunk_bytes_, size});
  return base;
}

void* CachingArena::allocate(size_t bytes) {
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.allocations;
  void* p = nullptr;
  if (open_pool_ != 0) {
    auto& list = pool_free_[open_pool_][size];
    if (!list.empty()) {
      p = list.back();
      list.pop_back();
    }
  }
  if (!p) {
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
    }
  }
  if (p) {
    ++stats_.cache_hits;
  } else {
    p = take_new_block(size);
    if (!p)
      failf("out of {} memory: a tensor of {:.1f} MiB could not be allocated ({:.1f} MiB in use, {:.1f} MiB reserved){}",
            device_name(raw_->device()), mib(size), mib(stats_.in_use), mib(stats_.reserved),
            open_pool_ != 0 ? "; during a graph capture cached blocks are not given back: capture after a warm-up step"
                            : "");
  }
  live_.emplace(p, Live{size, open_pool_});
  stats_.in_use += size;
  stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
  return p;
}

void CachingArena::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    // Runs inside tensor deleters (noexcept): report instead of throwing.
    std::fprintf(stderr, "warning: CachingArena::deallocate of unknown pointer %p (%zu bytes) ignored\n", ptr, bytes);
    return;
  }
  const Live live = it->second;
  live_.erase(it);
  stats_.in_use -= live.size;
  // A block freed while a pool is open (during a capture) may be used by the captured
  // work even if it was allocated before: it stays with that pool as well.
  const int pool = live.pool != 0 ? live.pool : open_pool_;
  if (pool != 0 && pool_free_.count(pool)) {
    pool_free_[pool][live.size].push_back(ptr);
  } else {
    free_[live.size].push_back(ptr);
  }
}

ArenaStats CachingArena::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingArena::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_in_use = stats_.in_use;
}

int CachingArena::open_private_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  TXL_CHECK(open_pool_ == 0, "CachingArena: private pool {} is still open", open_pool_);
  open_pool_ = next_pool_++;
  pool_free_[open_pool_];  // exists from now until released
  return open_pool_;
}

void CachingArena::close_private_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  open_pool_ = 0;
}

void CachingArena::release_private_pool(int pool) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (open_pool_ == pool) open_pool_ = 0;
  auto it = pool_free_.find(pool);
  if (it == pool_free_.end()) return;
  for (auto& [size, list] : it->second) {
    auto& common = free_[size];
    common.insert(common.end(), list.begin(), list.end());
  }
  pool_free_.erase(it);
  for (auto& [ptr, live] : live_) {
    if (live.pool == pool) live.pool = 0;
  }
}

}  // namespace txl::cuda
