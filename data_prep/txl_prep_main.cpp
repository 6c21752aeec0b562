// txl_prep: prepares a corpus file. See docs/data.md or `txl_prep --help`.
#include "txl/data/prep/prep.h"

int main(int argc, char** argv) { return txl::data::prep::prep_main(argc, argv); }
