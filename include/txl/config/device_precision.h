// The device and precision rules that txl_train and txl_eval share, in one place.
#pragma once
#include <string>

namespace txl {

// `fp16: true` means precision fp16 (and contradicts any other precision; it is resolved
// into `precision` and cleared), device is cpu | cuda, precision fp32 | tf32 | fp16 |
// bf16, and the CPU computes in fp32 only. `config` names the configuration in the one-line
// errors ("config", "eval config").
void resolve_device_precision(std::string& device, std::string& precision, bool& fp16, const std::string& config);

}  // namespace txl
