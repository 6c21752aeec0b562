// ext_len > 0 through the trainer and the evaluator: each batch's data starts with up to
// ext_len tokens of extended context, only the last rows are predicted, and the memory
// skips them. The loop's losses are recomputed in double precision by a model fed
// straight from the token streams (tests/golden/golden_model_test.cpp checks the model
// itself against the recipe's numbers for this setting).
#include <gtest/gtest.h>

#include <algorithm>

#include "train_test_util.h"
#include "txl/data/batch_iterator.h"
#include "txl/data/corpus.h"
#include "txl/core/error.h"
#include "txl/train/backend.h"
#include "txl/config/eval_config.h"
#include "txl/train/evaluator.h"
#include "txl/data/token_vector_iterator.h"
#include "txl/train/trainer.h"

namespace txl {
namespace {

constexpr int kVocab = 30;

TrainConfig small_config(const std::string& corpus, const std::string& work_dir) {
  TrainConfig c;
  c.data = corpus;
  c.work_dir = work_dir;
  c.model.n_layer = 2;
  c.model.n_head = 2;
  c.model.d_head = 4;
  c.model.d_model = 8;
  c.model.d_inner = 12;
  c.adaptive = true;
  c.model.cutoffs = {10, 20};
  c.model.dropout = 0.0;
  c.model.dropatt = 0.0;
  c.model.tgt_len = 5;
  c.model.mem_len = 4;
  c.model.ext_len = 2;
  c.batch_size = 4;
  c.batch_chunk = 2;
  c.eval_batch_size = 2;
  c.eval_max_steps = 1;
  c.optim = "adam";
  c.lr = 0.01;
  c.warmup_step = 0;
  c.max_step = 3;
  c.max_step_scheduler = 100;
  c.log_interval = 1;
  c.eval_interval = 0;
  c.model.init.init_std = 0.3;  // weights large enough that attention is far from uniform
  c.finalize(1);
  return c;
}

template <typename From, typename To>
void copy_params(TransformerXL<From>& from, TransformerXL<To>& to) {
  const Tensor<From>& p = from.params().flat_params();
  std::vector<From> host(static_cast<size_t>(p.numel()));
  from.ops().download(host.data(), p.data(), p.bytes());
  const std::vector<To> cast(host.begin(), host.end());
  to.ops().upload(to.params().flat_params().data(), cast.data(), cast.size() * sizeof(To));
}

// Streams b = tokens [b·n, (b+1)·n) of a split, n = N // B (docs/data.md, Data order), and the batch at
// offset i of streams [first, first + count): data = s[i - e : i + len] with
// e = min(ext_len, i), target = s[i + 1 : i + 1 + len], time-major.
struct StreamBatches {
  std::vector<int32_t> tokens;
  int64_t n = 0;
  void batch(int64_t i, int64_t len, int64_t ext_len, int64_t first, int64_t count, std::vector<int32_t>& data,
             std::vector<int32_t>& target, int64_t& ext) const {
    ext = std::min(ext_len, i);
    data.clear();
    target.clear();
    for (int64_t t = i - ext; t < i + len; ++t)
      for (int64_t b = first; b < first + count; ++b) data.push_back(tokens[static_cast<size_t>(b * n + t)]);
    for (int64_t t = i + 1; t < i + 1 + len; ++t)
      for (int64_t b = first; b < first + count; ++b) target.push_back(tokens[static_cast<size_t>(b * n + t)]);
  }
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// Three training steps (the first without extended context: nothing precedes it; the
// others with ext_len rows), batch_chunk 2: each step's loss equals the double-precision
// recomputation from the weights the step started from and each chunk's memory.
TEST(ExtendedContext, TrainerStepsMatchADirectComputation) {
  const std::string dir = test::fresh_dir("ext_train");
  const TrainConfig c = small_config(test::random_corpus(dir, kVocab), dir + "/run");
  auto comm = make_single_process_communicator();
  Trainer trainer(c, "", "", *comm);
  auto ops = make_cpu_ops<double>();
  const ModelConfig mc = trainer.model().config();
  TransformerXL<double> ref(mc, *ops);
  std::vector<std::vector<double>> weights;  // the weights each step started from
  auto snapshot = [&] {
    copy_params(trainer.model(), ref);
    weights.push_back(to_host(*ops, ref.params().flat_params()));
  };
  snapshot();
  std::vector<double> losses;
  trainer.set_after_step([&](int64_t) {
    losses.push_back(trainer.last_step_loss());
    snapshot();
  });
  trainer.run();
  ASSERT_EQ(losses.size(), 3u);

  const data::CorpusFile corpus = data::CorpusFile::open(c.data);
  StreamBatches s;
  s.tokens = corpus.read_tokens("train", 0, corpus.split("train").n_tokens);
  s.n = static_cast<int64_t>(s.tokens.size()) / c.batch_size;
  const int64_t cb = c.batch_size / c.batch_chunk;
  std::vector<Memory<double>> mems(static_cast<size_t>(c.batch_chunk));
  for (size_t step = 0; step < losses.size(); ++step) {
    ops->upload(ref.params().flat_params().data(), weights[step].data(), weights[step].size() * sizeof(double));
    double loss = 0;
    for (int64_t chunk = 0; chunk < c.batch_chunk; ++chunk) {
      std::vector<int32_t> data, target;
      StepContext ctx;
      s.batch(static_cast<int64_t>(step) * c.model.tgt_len, c.model.tgt_len, c.model.ext_len, chunk * cb, cb, data,
              target, ctx.ext_rows);
      EXPECT_EQ(ctx.ext_rows, step == 0 ? 0 : c.model.ext_len);
      const Tensor<double>& nll = ref.forward(data.data(), target.data(), ctx.ext_rows + c.model.tgt_len, cb,
                                              mems[static_cast<size_t>(chunk)], ctx);
      ASSERT_EQ(nll.numel(), c.model.tgt_len * cb);
      loss += mean(to_host(*ops, nll)) / static_cast<double>(c.batch_chunk);
    }
    // float32 against double: a few ulps of float per operation.
    EXPECT_NEAR(losses[step], loss, 2e-6 * loss) << "step " << step + 1;
  }
}

// The evaluator over a whole split with ext_len rows: the mean loss equals the
// double-precision loop over the streams, and replaying the decoder layers from a step
// graph (txl_eval --type graph) gives the same bits.
TEST(ExtendedContext, EvaluationMatchesADirectComputation) {
  const std::string dir = test::fresh_dir("ext_eval");
  TrainConfig c = small_config(test::random_corpus(dir, kVocab), dir + "/run");
  auto comm = make_single_process_communicator();
  auto fops = make_cpu_ops<float>();
  TransformerXL<float> model(c.model_config(kVocab, {}, "generic"), *fops);
  model.init_params(5);
  auto ops = make_cpu_ops<double>();
  TransformerXL<double> ref(model.config(), *ops);
  copy_params(model, ref);

  const data::CorpusFile corpus = data::CorpusFile::open(c.data);
  const int64_t batch = 2, tgt_len = 4;
  data::IteratorOptions opt;
  opt.ext_len = c.model.ext_len;
  auto it = data::make_batch_iterator(corpus, "valid", batch, 1, 0, tgt_len, opt);
  EvalSettings es;
  es.tgt_len = tgt_len;
  es.ext_len = c.model.ext_len;
  es.mem_len = 3;
  es.same_length = false;
  es.clamp_len = -1;
  const EvalResult r = evaluate(model, *it, es, batch, *comm);

  StreamBatches s;
  s.tokens = corpus.read_tokens("valid", 0, corpus.split("valid").n_tokens);
  s.n = static_cast<int64_t>(s.tokens.size()) / batch;
  ref.set_lengths(tgt_len, c.model.ext_len, 3, false, -1);
  Memory<double> mem;
  double sum = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < s.n - 1; i += tgt_len) {
    const int64_t len = std::min(tgt_len, s.n - 1 - i);
    std::vector<int32_t> data, target;
    StepContext ctx;
    s.batch(i, len, c.model.ext_len, 0, batch, data, target, ctx.ext_rows);
    const std::vector<double> nll =
        to_host(*ops, ref.forward(data.data(), target.data(), ctx.ext_rows + len, batch, mem, ctx));
    for (double x : nll) sum += x;
    tokens += len * batch;
  }
  EXPECT_EQ(r.tokens, tokens);
  EXPECT_GT(r.batches, 10);
  EXPECT_NEAR(r.loss(), sum / static_cast<double>(tokens), 2e-6 * r.loss());

  auto gops = make_backend("cpu", "fp32", 0, true);
  TransformerXL<float> graphed(model.config(), *gops);
  copy_params(model, graphed);
  EvalStep<float> step(graphed, make_step_graph(*gops));
  auto it2 = data::make_batch_iterator(corpus, "valid", batch, 1, 0, tgt_len, opt);
  const EvalResult rg = evaluate(graphed, *it2, es, batch, *comm, &step);
  EXPECT_GT(rg.graph_replays, 5);
  EXPECT_EQ(rg.nll_sum, r.nll_sum);
}

// txl_eval --manual: the text's batches carry the same extended context as a corpus split's.
TEST(ExtendedContext, TextIteratorPrecedesEachBatchWithItsContext) {
  std::vector<int32_t> tokens(20);
  for (int32_t i = 0; i < 20; ++i) tokens[static_cast<size_t>(i)] = i;
  data::TokenVectorIterator it(tokens, 1, 6, 4);
  data::Batch b;
  ASSERT_TRUE(it.next(b));
  EXPECT_EQ(b.ext, 0);
  EXPECT_EQ(b.data, std::vector<int32_t>({0, 1, 2, 3, 4, 5}));
  ASSERT_TRUE(it.next(b));
  EXPECT_EQ(b.ext, 4);
  EXPECT_EQ(b.data, std::vector<int32_t>({2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(b.target, std::vector<int32_t>({7, 8, 9, 10, 11, 12}));
  ASSERT_TRUE(it.next(b));
  ASSERT_TRUE(it.next(b));  // offset 18: the last target is token 19
  EXPECT_EQ(b.len, 1);
  EXPECT_EQ(b.data, std::vector<int32_t>({14, 15, 16, 17, 18}));
  EXPECT_EQ(b.target, std::vector<int32_t>({19}));
  EXPECT_FALSE(it.next(b));
}

// Both programs take ext_len > 0; a negative one is one line naming the key.
TEST(ExtendedContext, ConfigurationsAcceptItAndNameABadValue) {
  TrainConfig t;
  t.data = "x.h5";
  t.model.ext_len = 16;
  EXPECT_NO_THROW(t.finalize(1));
  t.model.ext_len = -1;
  try {
    t.finalize(1);
    ADD_FAILURE() << "ext_len -1 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ext_len"), std::string::npos) << e.what();
  }
  EvalConfig e;
  e.model = "m.h5";
  e.ext_len = 16;
  EXPECT_NO_THROW(e.finalize(1));
  e.ext_len = -2;
  EXPECT_THROW(e.finalize(1), Error);
}

}  // namespace
}  // namespace txl
