// The op backend named by the configuration key `device` (cpu | cuda) with its GEMM
// precision (fp32 | tf32 | bf16 | fp16).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "txl/core/ops.h"
#include "txl/core/step_graph.h"

namespace txl {

// `local_rank` picks the GPU (local_rank mod device count). device: cuda in a build
// without the CUDA backend, or on a machine without a GPU, is a txl::Error saying so.
// `graphs`: the backend must support make_step_graph (the CPU backend is then wrapped in
// RecordingOps, whose op calls can be recorded and replayed).
std::unique_ptr<Ops<float>> make_backend(const std::string& device, const std::string& precision, int local_rank,
                                         bool graphs = false);

// The PCI bus id of the GPU each of `local_size` local ranks uses (make_backend's choice:
// local rank mod device count). A build without CUDA, or a machine without a GPU, is a
// txl::Error saying so.
std::vector<std::string> gpu_bus_ids_of_local_ranks(int local_size);

// The StepGraph of a backend made with graphs = true: a CUDA graph on a GPU, recorded op
// calls on the CPU. Any other backend is a txl::Error.
std::unique_ptr<StepGraph> make_step_graph(Ops<float>& ops);

}  // namespace txl
