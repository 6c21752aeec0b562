// Recipe checkpoint <-> txl checkpoint against the recipe's own numbers
// (tests/fixtures/golden/recipe_checkpoint_expect.h5).
#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "txl/convert/checkpoint_vocabulary.h"
#include "txl/convert/convert_program.h"
#include "txl/convert/recipe_checkpoint.h"
#include "txl/core/error.h"
#include "txl/data/prep/prep.h"
#include "txl/dist/communicator.h"
#include "txl/model/model_checkpoint.h"
#include "txl/model/transformer_xl.h"
#include "txl/config/config_schema.h"
#include "txl/programs/programs.h"
#include "txl/config/train_config.h"
#include "txl/train/trainer.h"
#include "txl/train/training_checkpoint.h"

namespace txl {
namespace {

namespace fs = std::filesystem;
const std::string kGolden = std::string(TXL_SOURCE_DIR) + "/tests/fixtures/golden/";
const std::string kPt = kGolden + "recipe_checkpoint_last.pt";

class RecipeCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(TXL_BINARY_DIR) / "test_convert_tmp" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Eval-mode mean loss of data[18:24] -> data[19:25] from the checkpoint's memory.
double next_segment_loss(const TrainingCheckpoint& ckpt) {
  const h5::File expect = h5::File::open(kGolden + "recipe_checkpoint_expect.h5");
  Shape shape;
  const std::vector<int32_t> data = expect.read<int32_t>("/data", &shape);
  const int64_t batch = shape.at(1);
  auto ops = make_cpu_ops<float>();
  ModelConfig mc = read_model_config(ckpt.file());
  TransformerXL<float> model(mc, *ops);
  ckpt.load_model(model);
  model.set_lengths(6, 0, 6, false, -1);
  std::vector<Memory<float>> mems = ckpt.load_memories(MemoryLayout{batch, 0, batch}, 1, *ops);
  EXPECT_EQ(mems.at(0).mlen, 6);
  StepContext ctx;
  const Tensor<float>& nll = model.forward(data.data() + 18 * batch, data.data() + 19 * batch, 6, batch, mems[0], ctx);
  std::vector<float> host(static_cast<size_t>(nll.numel()));
  ops->download(host.data(), nll.data(), nll.bytes());
  double sum = 0.0;
  for (float v : host) sum += v;
  return sum / static_cast<double>(host.size());
}

double expected_loss() {
  return h5::File::open(kGolden + "recipe_checkpoint_expect.h5").attr_double("/", "next_segment_eval_loss");
}

TEST_F(RecipeCheckpoint, ImportedModelAndMemoryReproduceTheRecipesNextSegmentLoss) {
  const std::string h5 = path("converted.h5");
  const ConversionReport rep = convert_recipe_checkpoint(kPt, h5, {});
  const TrainingCheckpoint ckpt = TrainingCheckpoint::open(h5);
  const double loss = next_segment_loss(ckpt);
  RecordProperty("loss", fmt::format("{:.17g}", loss));
  RecordProperty("expected", fmt::format("{:.17g}", expected_loss()));
  EXPECT_NEAR(loss, expected_loss(), 2e-6 * expected_loss()) << loss;
  // The .pt opened directly (converted in memory) gives the same.
  EXPECT_EQ(next_segment_loss(TrainingCheckpoint::open(kPt)), loss);
}

TEST_F(RecipeCheckpoint, VocabularyIsTheRecipes) {
  const h5::File f = open_recipe_checkpoint_in_memory(kPt);
  const CheckpointVocabulary v = read_checkpoint_vocabulary(f);
  const std::vector<std::string> symbols =
      h5::File::open(kGolden + "recipe_checkpoint_expect.h5").read_strings("/symbols");
  EXPECT_EQ(v.vocabulary.symbols(), symbols);
  EXPECT_EQ(v.vocabulary.rules().line_end, "<eos>");
  EXPECT_EQ(v.vocab_kind, "word");
  EXPECT_EQ(v.vocabulary.counts().at(static_cast<size_t>(v.vocabulary.id("the"))), 12);
  // The recipe's encoding of a line: words, then <eos>.
  const std::vector<int32_t> ids = v.vocabulary.encode("the cat sat");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids.back(), v.vocabulary.id("<eos>"));
}

TEST_F(RecipeCheckpoint, TrainingStateAndOptimizerCarryOver) {
  const TrainingCheckpoint ckpt = TrainingCheckpoint::open(kPt);
  const TrainingState s = ckpt.state();
  EXPECT_EQ(s.step, 3);
  EXPECT_EQ(s.position.epoch, 0);  // the recipe's epoch 1
  EXPECT_EQ(s.position.batch, 3);
  EXPECT_EQ(s.position.offset, 18);  // 3 batches of tgt_len 6
  EXPECT_TRUE(std::isinf(s.best_val_loss));
  EXPECT_EQ(ckpt.file().attr_string("/optim", "kind"), "lamb");
  EXPECT_EQ(ckpt.file().attr_int("/optim", "steps"), 3);
  // exp_avg of r_w_bias is the first optimizer state (index 0 = the first parameter).
  const pt::TorchFile src = pt::TorchFile::open(kPt);
  const pt::Value* st0 = src.root().get("optimizer_state")->get("state")->entries.at(0).second;
  EXPECT_EQ(ckpt.file().read<float>("/optim/r_w_bias/exp_avg"), src.floats(*st0->get("exp_avg"), "exp_avg"));
  // The stored configuration is one txl_train accepts, with the recipe's values.
  TrainConfig cfg;
  apply_section(cfg, train_config_keys(), YAML::Load(ckpt.info().config_yaml), "converted [config]");
  EXPECT_EQ(cfg.optim, "jitlamb");
  EXPECT_EQ(cfg.scheduler, "cosine");
  EXPECT_EQ(cfg.batch_size, 2);
  EXPECT_EQ(cfg.model.tgt_len, 6);
  EXPECT_EQ(cfg.max_step, 100);
  EXPECT_DOUBLE_EQ(cfg.eta_min, 0.001);
}

TEST_F(RecipeCheckpoint, ExportedPtReadsBackBitIdentically) {
  const h5::File a = open_recipe_checkpoint_in_memory(kPt);
  ConversionReport rep;
  const std::vector<uint8_t> bytes = export_recipe_checkpoint(a, {}, rep);
  const pt::TorchFile exported = pt::TorchFile::parse(bytes, "exported.pt");
  h5::File b = h5::File::create_in_memory("reimported");
  import_recipe_checkpoint(exported, {}, b);
  for (const std::string& name : a.list("/model"))
    EXPECT_EQ(a.read<float>("/model/" + name), b.read<float>("/model/" + name)) << name;
  for (const char* layer : {"/memory/layer_0", "/memory/layer_1"})
    EXPECT_EQ(a.read<float>(layer), b.read<float>(layer)) << layer;
  EXPECT_EQ(read_checkpoint_vocabulary(a).vocabulary.symbols(), read_checkpoint_vocabulary(b).vocabulary.symbols());
  EXPECT_EQ(read_checkpoint_vocabulary(a).vocabulary.counts(), read_checkpoint_vocabulary(b).vocabulary.counts());
  // ... and its model_state is the recipe's, tensor for tensor, pos_emb.inv_freq included.
  const pt::TorchFile original = pt::TorchFile::open(kPt);
  const pt::Value* orig_state = original.root().get("model_state");
  const pt::Value* new_state = exported.root().get("model_state");
  EXPECT_EQ(orig_state->entries.size(), new_state->entries.size());
  for (const auto& [k, v] : orig_state->entries) {
    const pt::Value* t = new_state->get(k->s);
    ASSERT_NE(t, nullptr) << k->s;
    EXPECT_EQ(t->tensor.shape, v->tensor.shape) << k->s;
    EXPECT_EQ(exported.floats(*t, k->s), original.floats(*v, k->s)) << k->s;
  }
  const pt::Value* vocab = exported.root().get("vocab");
  EXPECT_EQ(vocab->s, "utils.vocabulary.Vocab");
  EXPECT_EQ(vocab->get("eos_idx")->i, 0);
  EXPECT_EQ(exported.root().get("model_config")->get("n_token")->i, 13);
}

TEST_F(RecipeCheckpoint, ConvertProgramRoundTripsFiles) {
  std::ostringstream out;
  ASSERT_EQ(run_convert_program({kPt, path("a.h5")}, out), 0);
  EXPECT_NE(out.str().find("not carried over:"), std::string::npos);
  ASSERT_EQ(run_convert_program({path("a.h5"), path("b.pt")}, out), 0);
  ASSERT_EQ(run_convert_program({path("b.pt"), path("c.h5")}, out), 0);
  const h5::File a = h5::File::open(path("a.h5")), c = h5::File::open(path("c.h5"));
  for (const std::string& name : a.list("/model"))
    EXPECT_EQ(a.read<float>("/model/" + name), c.read<float>("/model/" + name)) << name;
  EXPECT_THROW(run_convert_program({kPt}, out), Error);
  EXPECT_THROW(run_convert_program({kPt, path("x.h5"), "--bogus"}, out), Error);
  EXPECT_THROW(run_convert_program({path("missing.pt"), path("x.h5")}, out), Error);
  EXPECT_FALSE(fs::exists(path("x.h5")));
}

TEST_F(RecipeCheckpoint, EvalManualTextNeedsNoCorpus) {
  auto comm = make_single_process_communicator();
  const std::string json = path("eval.json");
  ASSERT_EQ(run_eval_program({"--model", kPt, "--manual", "the cat sat on the mat", "--tgt_len", "4", "--mem_len",
                              "4", "--json", json},
                             *comm),
            kExitOk);
  std::ifstream f(json);
  const nlohmann::json j = nlohmann::json::parse(f);
  const double loss = j["results"]["manual"]["loss"].get<double>();
  EXPECT_TRUE(std::isfinite(loss) && loss > 0) << loss;
  EXPECT_EQ(j["results"]["manual"]["tokens"].get<int64_t>(), 6);  // 7 symbols with <eos>: 6 predictions
}

// Adaptive softmax with div_val 2 and projections tied per cluster: txl -> .pt -> txl
// keeps every parameter bit for bit. (The model builds attn_type 0 only so far.)
TEST_F(RecipeCheckpoint, AdaptiveModelRoundTrips) {
  for (int64_t attn_type = 0; attn_type < 1; ++attn_type) {
    ModelConfig mc;
    mc.n_token = 20, mc.n_layer = 2, mc.n_head = 2, mc.d_head = 4, mc.d_model = 8, mc.d_inner = 12;
    mc.cutoffs = {8, 14};
    mc.div_val = 2;
    mc.tie_projs = {false, true, true};
    mc.attn_type = attn_type;
    mc.tgt_len = 5, mc.mem_len = 3;
    auto ops = make_cpu_ops<float>();
    TransformerXL<float> model(mc, *ops);
    model.init_params(7);
    h5::File a = h5::File::create_in_memory("adaptive");
    save_model_params(a, model.params(), mc, *ops);
    ConversionReport rep;
    const std::vector<uint8_t> bytes = export_recipe_checkpoint(a, {}, rep);
    const pt::TorchFile exported = pt::TorchFile::parse(bytes, "adaptive.pt");
    const pt::Value* state = exported.root().get("model_state");
    EXPECT_EQ(state->get("pos_emb.inv_freq") != nullptr, attn_type == 0 || attn_type == 2) << attn_type;
    h5::File b = h5::File::create_in_memory("adaptive back");
    import_recipe_checkpoint(exported, {}, b);
    const ModelConfig back = read_model_config(b);
    EXPECT_EQ(back.cutoffs, mc.cutoffs);
    EXPECT_EQ(back.tie_projs, mc.tie_projs);
    EXPECT_EQ(back.div_val, 2);
    EXPECT_EQ(back.attn_type, attn_type);
    for (const ParamInfo& p : model.params().infos())
      EXPECT_EQ(a.read<float>("/model/" + p.name), b.read<float>("/model/" + p.name)) << attn_type << " " << p.name;
  }
}

// A corpus of the text the fixture's vocabulary was counted from (same symbols, same order).
std::string recipe_text_corpus(const fs::path& dir, const std::string& line) {
  fs::create_directories(dir);
  for (const char* split : {"train", "valid", "test"}) {
    std::ofstream out(dir / (std::string(split) + ".txt"));
    for (int i = 0; i < 3; ++i) out << line << "\n";
  }
  data::prep::PrepOptions o;
  o.dataset = "generic";
  o.eos = true;
  o.data = dir.string();
  o.out = (dir / "corpus.h5").string();
  o.progress.enabled = false;
  data::prep::prepare_corpus(o);
  return o.out;
}

TEST_F(RecipeCheckpoint, TxlTrainContinuesARecipeRunFromThePt) {
  const std::string corpus =
      recipe_text_corpus(dir_ / "text", "the cat sat on the mat and the dog sat on the log while a bird sang");
  auto comm = make_single_process_communicator();
  const std::string wd = path("run");
  ASSERT_EQ(run_train_program({"--restart", kPt, "--data", corpus, "--dataset", "generic", "--work_dir", wd,
                               "--max_step", "5", "--eval_interval", "100"},
                              *comm),
            kExitOk);
  const TrainingCheckpoint last = TrainingCheckpoint::open(wd + "/checkpoint_last.h5");
  EXPECT_EQ(last.state().step, 5);
  EXPECT_EQ(last.file().attr_int("/optim", "steps"), 5);
  std::ifstream log(wd + "/train_log.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("| not carried over from the recipe: corpus checksum"), std::string::npos);
  // A recipe work_dir is found by its checkpoint_last.pt.
  fs::create_directories(path("LM-TFM"));
  fs::copy_file(kPt, path("LM-TFM/checkpoint_last.pt"));
  EXPECT_EQ(resolve_checkpoint_path(path("LM-TFM")), path("LM-TFM/checkpoint_last.pt"));
  // A corpus with other symbols is refused, naming the first differing id.
  const std::string other = recipe_text_corpus(dir_ / "other", "a b c d e f g h i j k l");
  try {
    run_train_program({"--restart", kPt, "--data", other, "--dataset", "generic", "--work_dir", path("run2")}, *comm);
    FAIL() << "a corpus with another vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not the corpus the model was trained on"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace txl
