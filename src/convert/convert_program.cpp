#include "txl/convert/convert_program.h"

#include <filesystem>
#include <ostream>

#include "txl/convert/recipe_checkpoint.h"
#include "txl/core/error.h"

namespace txl {
namespace {

void print_report(std::ostream& out, const ConversionReport& rep) {
  out << "carried over:\n";
  for (const std::string& line : rep.carried) out << "  " << line << "\n";
  if (rep.not_carried.empty()) {
    out << "not carried over: nothing\n";
    return;
  }
  out << "not carried over:\n";
  for (const std::string& line : rep.not_carried) out << "  " << line << "\n";
}

}  // namespace

std::string convert_usage() {
  return "usage: txl_convert recipe.pt out.h5 [--corpus corpus.h5]   recipe checkpoint -> txl checkpoint\n"
         "       txl_convert model.h5 out.pt [--corpus corpus.h5]    txl checkpoint -> recipe checkpoint\n"
         "--corpus: the txl corpus (txl_prep) of the training data: its vocabulary must equal the checkpoint's;\n"
         "          it lets txl_train --restart continue a converted recipe run, and gives an exported .pt\n"
         "          its vocabulary. Nothing in a .pt is ever executed (docs/recipe-users.md).\n";
}

int run_convert_program(const std::vector<std::string>& args, std::ostream& out) {
  std::vector<std::string> positional;
  std::string corpus;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      out << convert_usage();
      return 0;
    }
    if (args[i] == "--corpus") {
      if (i + 1 >= args.size()) fail("command line: --corpus needs a file");
      corpus = args[++i];
    } else if (args[i].rfind("--", 0) == 0) {
      failf("command line: unknown option '{}' (txl_convert IN OUT [--corpus corpus.h5])", args[i]);
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.size() != 2)
    failf("command line: txl_convert takes an input and an output file, got {} (see --help)", positional.size());
  const std::string& in = positional[0];
  const std::string& dst = positional[1];
  if (!std::filesystem::exists(in)) failf("{}: file not found", in);
  if (std::filesystem::exists(dst) && std::filesystem::equivalent(in, dst))
    failf("{}: the output would overwrite the input", dst);
  ConversionReport rep;
  if (pt::looks_like_torch_file(in)) {
    if (dst.size() >= 3 && dst.compare(dst.size() - 3, 3, ".pt") == 0)
      failf("{}: the input is already a PyTorch checkpoint; the output of a .pt is a txl .h5", dst);
    rep = convert_recipe_checkpoint(in, dst, RecipeImportOptions{corpus});
    out << "txl_convert: recipe checkpoint " << in << " -> txl checkpoint " << dst << "\n";
  } else {
    rep = convert_to_recipe_checkpoint(in, dst, RecipeExportOptions{corpus});
    out << "txl_convert: txl checkpoint " << in << " -> recipe checkpoint " << dst << "\n";
  }
  print_report(out, rep);
  return 0;
}

}  // namespace txl
