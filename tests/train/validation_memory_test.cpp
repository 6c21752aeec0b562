// The memory the trainer's validation uses: the training attention span
// (mem_len + tgt_len - eval_tgt_len), or none for a model trained without memory, as the
// recipe evaluates such a model.
#include <gtest/gtest.h>

#include "train_test_util.h"
#include "txl/data/batch_iterator.h"
#include "txl/data/corpus.h"
#include "txl/train/evaluator.h"
#include "txl/train/trainer.h"

namespace txl {
namespace {

TEST(TrainerValidation, AModelWithoutMemoryIsValidatedWithoutMemory) {
  const std::string dir = test::fresh_dir("no_memory_validation");
  TrainConfig c;
  c.data = test::random_corpus(dir, 30);
  c.work_dir = dir + "/run";
  c.model.n_layer = 2;
  c.model.n_head = 2;
  c.model.d_head = 4;
  c.model.d_model = 8;
  c.model.d_inner = 12;
  c.model.dropout = 0.0;
  c.model.tgt_len = 6;
  c.model.mem_len = 0;
  c.eval_tgt_len = 3;  // the attention-span rule would give validation a memory of 3
  c.batch_size = 2;
  c.eval_batch_size = 2;
  c.eval_interval = 0;
  c.max_step = 2;
  c.warmup_step = 0;
  c.model.init.init_std = 0.3;
  c.finalize(1);
  auto comm = make_single_process_communicator();
  Trainer t(c, "", "", *comm);
  const TrainOutcome o = t.run();

  const data::CorpusFile corpus = data::CorpusFile::open(c.data);
  auto evaluate_with_memory = [&](int64_t mem_len) {
    data::IteratorOptions opt;
    opt.warmup_mem_len = mem_len;
    auto it = data::make_batch_iterator(corpus, "valid", c.eval_batch_size, 1, 0, c.eval_tgt_len, opt);
    EvalSettings s;
    s.tgt_len = c.eval_tgt_len;
    s.mem_len = mem_len;
    s.same_length = false;
    s.clamp_len = -1;
    return evaluate(t.model(), *it, s, c.eval_batch_size, *comm).loss();
  };
  const double without = evaluate_with_memory(0), with_span = evaluate_with_memory(3);
  EXPECT_EQ(o.best_val_loss, without);
  EXPECT_NE(without, with_span);  // the check can tell the two rules apart
}

}  // namespace
}  // namespace txl
