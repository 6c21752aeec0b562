// The txl_convert program: `txl_convert recipe.pt out.h5 [--corpus corpus.h5]` or
// `txl_convert model.h5 out.pt [--corpus corpus.h5]` (docs/recipe-users.md). The direction
// follows the input's format. Prints what was carried over and what was not.
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace txl {

std::string convert_usage();
// Exit code (0 ok); bad input throws txl::Error.
int run_convert_program(const std::vector<std::string>& args, std::ostream& out);

}  // namespace txl
