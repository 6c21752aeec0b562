// SHA-256 (OpenSSL) of streamed bytes: source-file checksums and corpus content digests.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace txl::data::prep {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, size_t bytes);
  // Lower-case hex digest; the object can not be updated afterwards.
  std::string hex_digest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(const void* data, size_t bytes);
// Digest of a whole file, read in blocks.
std::string sha256_file(const std::string& path);

}  // namespace txl::data::prep
