// Regression driver of the fuzz targets in the regular (non-libFuzzer) build: feeds every
// file under the given folders (fuzz/seeds/<name>/, plus any crash inputs added there) to
// LLVMFuzzerTestOneInput once. ctest runs it per target (fuzz/fuzz_targets.cmake).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    if (fs::is_regular_file(argv[i])) {
      inputs.emplace_back(argv[i]);
      continue;
    }
    if (!fs::is_directory(argv[i])) {
      std::fprintf(stderr, "error: %s: no such seed file or folder\n", argv[i]);
      return 1;
    }
    for (const auto& e : fs::recursive_directory_iterator(argv[i]))
      if (e.is_regular_file()) inputs.push_back(e.path());
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "error: no seed inputs given\n");
    return 1;
  }
  std::sort(inputs.begin(), inputs.end());
  for (const fs::path& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%zu inputs replayed\n", inputs.size());
  return 0;
}
