#include "txl/config/eval_arguments.h"

namespace txl {
namespace {
bool is_option(const std::string& word) { return word.rfind("--", 0) == 0; }
}  // namespace

std::vector<std::string> recipe_eval_arguments(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.empty()) continue;
    const bool list = arg == "--percentiles" || arg == "--manual";
    if (list && i + 1 < args.size() && !is_option(args[i + 1])) {
      std::string joined;
      const char* separator = arg == "--manual" ? " " : ",";
      while (i + 1 < args.size() && !is_option(args[i + 1])) {
        if (!args[i + 1].empty()) joined += (joined.empty() ? "" : separator) + args[i + 1];
        ++i;
      }
      out.push_back(arg + "=" + joined);
    } else if (arg == "--save_data" && (i + 1 >= args.size() || is_option(args[i + 1]) || args[i + 1].empty())) {
      out.push_back("--save_data=auto");
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

}  // namespace txl
