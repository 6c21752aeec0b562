// eval.py's argument shapes in txl_eval's command line: argparse takes `--percentiles 90
// 95 99` and `--manual some words` (nargs='+'), a bare `--save_data` flag, and the run
// scripts pass an empty word where a math flag is absent ("${MATHS[k]}"). txl's parser
// takes one value per option, so these are rewritten first.
#pragma once
#include <string>
#include <vector>

namespace txl {

// `--percentiles A B C` -> `--percentiles=A,B,C`; `--manual W1 W2` -> `--manual=W1 W2`;
// `--save_data` without a value -> `--save_data=auto`; empty words dropped. Everything
// else passes unchanged.
std::vector<std::string> recipe_eval_arguments(const std::vector<std::string>& args);

}  // namespace txl
