// txl_train CONFIG.yaml [--config PRESET] [--key value ...]  (docs/training.md)
#include "txl/programs/programs.h"

int main(int argc, char** argv) { return txl::run_program_main(argc, argv, txl::run_train_program); }
