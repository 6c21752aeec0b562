// txl_eval [CONFIG.yaml] [--config PRESET] --model CKPT [--data corpus.h5] [--split valid|test|all] ...
// (docs/training.md)
#include "txl/programs/programs.h"

int main(int argc, char** argv) { return txl::run_program_main(argc, argv, txl::run_eval_program); }
