// txl_convert IN OUT [--corpus corpus.h5]: recipe .pt <-> txl .h5 (docs/recipe-users.md)
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "txl/convert/convert_program.h"

int main(int argc, char** argv) {
  try {
    return txl::run_convert_program(std::vector<std::string>(argv + 1, argv + argc), std::cout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
