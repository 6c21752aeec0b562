// txl_plot RUN [RUN ...] [-o curves.png]: training curves of one or more runs (work dirs,
// train_log.jsonl or DLLogger train_log.json files) drawn with gnuplot (docs/training.md).
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "txl/core/error.h"
#include "txl/train/training_curves.h"

int main(int argc, char** argv) {
  CLI::App app{"txl_plot: training curves (loss, ppl or bpc, throughput, lr) of txl or recipe runs as a PNG"};
  std::vector<std::string> runs;
  std::string out = "training_curves.png";
  bool keep = false;
  app.add_option("runs", runs, "work dirs, train_log.jsonl or DLLogger train_log.json files")->required();
  app.add_option("-o,--output", out, "PNG file to write");
  app.add_flag("--keep-script", keep, "keep the gnuplot script and data files next to the PNG");
  CLI11_PARSE(app, argc, argv);
  try {
    std::vector<txl::TrainingCurves> curves;
    for (const std::string& r : runs) curves.push_back(txl::read_training_curves(r));
    const std::string script = txl::write_curves_script(curves, out, out + ".gnuplot");
    const pid_t pid = fork();
    if (pid == 0) {
      execlp("gnuplot", "gnuplot", script.c_str(), static_cast<char*>(nullptr));
      std::cerr << "error: txl_plot: cannot run gnuplot (install gnuplot-nox)" << std::endl;
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!keep) {
      std::error_code ec;
      std::filesystem::remove(script, ec);
      for (size_t i = 0; i < curves.size(); ++i)
        for (const char* part : {"train", "valid"})
          std::filesystem::remove(out + ".run" + std::to_string(i) + "." + part + ".dat", ec);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return 1;
      std::cerr << "error: txl_plot: gnuplot failed on " << script << std::endl;
      return 1;
    }
    std::cout << "wrote " << out << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}
