// The op backend named by the configuration key `device` (cpu | cuda) with its GEMM
// precision (fp32 | tf32 | bf16 | fp16).
#pragma once
#include <memory>
#include <string>

#include "txl/core/ops.h"

namespace txl {

// `local_rank` picks the GPU (local_rank mod device count). device: cuda in a build
// without the CUDA backend, or on a machine without a GPU, is a txl::Error saying so.
std::unique_ptr<Ops<float>> make_backend(const std::string& device, const std::string& precision, int local_rank);

}  // namespace txl
