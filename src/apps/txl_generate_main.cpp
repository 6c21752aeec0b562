// txl_generate --model CKPT (--prompt TEXT | --prompt_file F | --prompt_ids 1,2,3) [...]
// (docs/generate.md)
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "txl/generate/generate_program.h"

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    return txl::generate::run_generate_program(args, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
