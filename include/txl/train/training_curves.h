// Training curves of a run read back from its logs (train_log.jsonl, or the DLLogger
// file train_log.json of txl or of the recipe), and a gnuplot script that draws several
// runs into one PNG: loss against step, ppl (bpc) against tokens, throughput and lr
// against step (`txl_plot`, docs/training.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace txl {

struct CurvePoint {
  int64_t step = 0;
  double tokens = 0;  // target tokens trained on up to this step (step x batch_size x tgt_len)
  double loss = 0;
  double metric = 0;  // ppl, or bpc for character-level corpora
  double tok_per_s = 0;
  double lr = 0;
};

struct TrainingCurves {
  std::string name;  // the run's label (its directory)
  bool char_level = false;
  std::vector<CurvePoint> train;  // tok_per_s and lr set
  std::vector<CurvePoint> valid;
};

// `path`: a work dir (train_log.jsonl is read, else train_log.json), a train_log.jsonl
// or a DLLogger file. A resumed run's records of repeated steps keep the last.
TrainingCurves read_training_curves(const std::string& path);

// Writes one data file per run and series next to `script_path`, and the gnuplot script
// that draws them into `png_path`. Returns the script's path.
std::string write_curves_script(const std::vector<TrainingCurves>& runs, const std::string& png_path,
                                const std::string& script_path);

}  // namespace txl
