// Error handling: every user-facing failure is a txl::Error whose message names the
// problem (file, key, tensor...). Programs catch it in main, print one line, exit non-zero.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace txl {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& message) { throw Error(message); }

template <typename... Args>
[[noreturn]] void failf(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace txl

// Internal invariant / argument check. The message should name what was wrong.
#define TXL_CHECK(cond, ...)                                 \
  do {                                                       \
    if (!(cond)) ::txl::failf(__VA_ARGS__);                  \
  } while (0)
