#include "txl/config/device_precision.h"

#include <algorithm>
#include <vector>

#include "txl/core/error.h"
#include "txl/config/closest_name.h"

namespace txl {

namespace {
void require_one_of(const std::string& value, const std::string& config, const std::string& key,
                    const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  std::string list;
  for (const auto& n : allowed) list += (list.empty() ? "" : " | ") + n;
  failf("{}: {}: unknown value '{}' (expected {}; closest: '{}')", config, key, value, list,
        closest_name(value, allowed));
}
}  // namespace

void resolve_device_precision(std::string& device, std::string& precision, bool& fp16, const std::string& config) {
  if (fp16) {
    if (precision != "fp32" && precision != "fp16")
      failf("{}: fp16: fp16: true contradicts precision: {}", config, precision);
    precision = "fp16";
    fp16 = false;
  }
  require_one_of(device, config, "device", {"cpu", "cuda"});
  require_one_of(precision, config, "precision", {"fp32", "tf32", "fp16", "bf16"});
  if (device != "cuda" && precision != "fp32")
    failf("{}: precision: {} needs device: cuda (the CPU backend computes in fp32 only)", config, precision);
}

}  // namespace txl
