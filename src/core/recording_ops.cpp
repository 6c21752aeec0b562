#include "txl/core/recording_ops.h"

#include <utility>

#include "txl/core/error.h"

namespace txl {

// ---- RecordingAllocator -----------------------------------------------------------------

RecordingAllocator::~RecordingAllocator() {
  for (auto& [id, pool] : pools_)
    for (auto& [ptr, bytes] : pool.held) inner_.deallocate(ptr, bytes);
}

void* RecordingAllocator::allocate(size_t bytes) {
  void* p = inner_.allocate(bytes);
  if (open_ != 0) owner_[p] = open_;
  return p;
}

void RecordingAllocator::deallocate(void* ptr, size_t bytes) {
  int pool = open_;
  if (auto it = owner_.find(ptr); it != owner_.end()) {
    pool = it->second;
    owner_.erase(it);
  }
  if (pool != 0 && pools_.count(pool)) {
    pools_[pool].held.emplace_back(ptr, bytes);  // a recorded op may still use it
    return;
  }
  inner_.deallocate(ptr, bytes);
}

int RecordingAllocator::open_pool() {
  TXL_CHECK(open_ == 0, "RecordingAllocator: a pool is already open");
  open_ = next_pool_++;
  pools_[open_];
  return open_;
}

void RecordingAllocator::close_pool() { open_ = 0; }

void RecordingAllocator::release_pool(int pool) {
  auto it = pools_.find(pool);
  if (it == pools_.end()) return;
  if (open_ == pool) open_ = 0;
  for (auto& [ptr, bytes] : it->second.held) inner_.deallocate(ptr, bytes);
  pools_.erase(it);
  for (auto o = owner_.begin(); o != owner_.end();)  // still-live blocks: freed normally later
    o = o->second == pool ? owner_.erase(o) : std::next(o);
}

size_t RecordingAllocator::reserved_blocks() const {
  size_t n = 0;
  for (const auto& [id, pool] : pools_) n += pool.held.size();
  return n;
}

// ---- RecordingOps -----------------------------------------------------------------------

template <typename T>
RecordingOps<T>::RecordingOps(std::unique_ptr<Ops<T>> inner)
    : ForwardingOps<T>(std::move(inner)),
      alloc_(this->inner().allocator()),
      name_(std::string(this->inner().name()) + "+graph") {}

template <typename T>
void RecordingOps<T>::begin_recording() {
  TXL_CHECK(!recording_, "RecordingOps: already recording");
  recording_ = true;
  recording_ops_.clear();
}

template <typename T>
typename RecordingOps<T>::Recording RecordingOps<T>::end_recording() {
  recording_ = false;
  return std::exchange(recording_ops_, {});
}

template <typename T>
void RecordingOps<T>::host_op(const char* op, const std::function<void()>& call) {
  TXL_CHECK(!recording_, "graph capture: {} moves data between host and device and cannot be recorded in a step graph",
            op);
  call();
}

// Every other op: the call with its arguments by value, run now or later.
template <typename T>
void RecordingOps<T>::device_op(const char*, std::function<void()> call) {
  if (recording_)
    recording_ops_.push_back(std::move(call));
  else
    call();
}

// ---- RecordedStepGraph ------------------------------------------------------------------

template <typename T>
RecordedStepGraph<T>::~RecordedStepGraph() {
  reset();
}

template <typename T>
void RecordedStepGraph<T>::reset() {
  steps_.clear();
  captured_ = false;
  if (pool_ != 0) ops_.recording_allocator().release_pool(pool_);
  pool_ = 0;
}

template <typename T>
void RecordedStepGraph<T>::capture(const std::function<void()>& step) {
  reset();
  pool_ = ops_.recording_allocator().open_pool();
  ops_.begin_recording();
  try {
    step();
  } catch (...) {
    ops_.end_recording();
    ops_.recording_allocator().close_pool();
    reset();
    throw;
  }
  steps_ = ops_.end_recording();
  ops_.recording_allocator().close_pool();
  captured_ = true;
}

template <typename T>
void RecordedStepGraph<T>::replay() {
  TXL_CHECK(captured_, "StepGraph: replay() before capture()");
  for (const auto& op : steps_) op();
}

template <typename T>
std::unique_ptr<StepGraph> make_recorded_step_graph(Ops<T>& ops) {
  auto* rec = dynamic_cast<RecordingOps<T>*>(&ops);
  if (!rec) return nullptr;
  return std::make_unique<RecordedStepGraph<T>>(*rec);
}

template class RecordingOps<float>;
template class RecordingOps<double>;
template class RecordedStepGraph<float>;
template class RecordedStepGraph<double>;
template std::unique_ptr<StepGraph> make_recorded_step_graph(Ops<float>&);
template std::unique_ptr<StepGraph> make_recorded_step_graph(Ops<double>&);

}  // namespace txl
