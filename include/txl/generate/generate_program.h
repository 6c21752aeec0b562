// txl_generate: text from a checkpoint (docs/generate.md). The program's main only reports
// errors; tests call run_generate_program directly.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace txl::generate {

// Runs the program on `args` (without the program name), printing the text to `out` and
// the summary line to `log`. Returns the exit code; bad input throws txl::Error (one line).
int run_generate_program(const std::vector<std::string>& args, std::ostream& out, std::ostream& log);

}  // namespace txl::generate
