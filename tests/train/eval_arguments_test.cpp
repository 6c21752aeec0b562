// eval.py's argument shapes rewritten for txl_eval's parser (include/txl/config/eval_arguments.h).
#include <gtest/gtest.h>

#include "txl/config/eval_arguments.h"

namespace txl {
namespace {

using Args = std::vector<std::string>;

TEST(EvalArguments, RecipeShapesBecomeOneValuePerOption) {
  // scripts/inference_benchmark.sh: an empty word for fp32, a bare --save_data at the end.
  EXPECT_EQ(recipe_eval_arguments({"--type", "pytorch", "--log_interval", "1", "--no_env", "", "--save_data"}),
            (Args{"--type", "pytorch", "--log_interval", "1", "--no_env", "--save_data=auto"}));
  EXPECT_EQ(recipe_eval_arguments({"--save_data", "--model", "m.h5"}), (Args{"--save_data=auto", "--model", "m.h5"}));
  EXPECT_EQ(recipe_eval_arguments({"--save_data", "lat.txt"}), (Args{"--save_data", "lat.txt"}));
  EXPECT_EQ(recipe_eval_arguments({"--percentiles", "90", "95", "99", "--split", "test"}),
            (Args{"--percentiles=90,95,99", "--split", "test"}));
  EXPECT_EQ(recipe_eval_arguments({"--percentiles", "50,90"}), (Args{"--percentiles=50,90"}));
  EXPECT_EQ(recipe_eval_arguments({"--manual", "The", "cat", "sat.", "--tgt_len", "8"}),
            (Args{"--manual=The cat sat.", "--tgt_len", "8"}));
  EXPECT_EQ(recipe_eval_arguments({"--manual", "One argument."}), (Args{"--manual=One argument."}));
  // Without words after it the option is left for the parser to report.
  EXPECT_EQ(recipe_eval_arguments({"--manual", "--split", "test"}), (Args{"--manual", "--split", "test"}));
  EXPECT_EQ(recipe_eval_arguments({"cfg.yaml", "--config", "default", "--clamp_len", "-1"}),
            (Args{"cfg.yaml", "--config", "default", "--clamp_len", "-1"}));
}

}  // namespace
}  // namespace txl
