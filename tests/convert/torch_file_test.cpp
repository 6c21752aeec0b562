// The .pt reader against the recipe's real checkpoint (tests/fixtures/golden) and inputs
// crafted from its bytes: each kind of bad input gives one clear txl::Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "txl/convert/pickle_reader.h"
#include "txl/convert/pickle_writer.h"
#include "txl/convert/torch_file.h"
#include "txl/convert/zip_archive.h"
#include "txl/core/error.h"

namespace txl::pt {
namespace {

const std::string kFixture = std::string(TXL_SOURCE_DIR) + "/tests/fixtures/golden/recipe_checkpoint_last.pt";
const std::string kDeflated = std::string(TXL_SOURCE_DIR) + "/tests/fixtures/converted/recipe_checkpoint_deflated.pt";

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The fixture re-zipped with `edit` applied to each entry's contents.
template <typename Edit>
std::vector<uint8_t> rezip(Edit&& edit) {
  const std::vector<uint8_t> bytes = file_bytes(kFixture);
  const zip::Archive a = zip::Archive::parse(bytes, kFixture);
  zip::Writer w;
  for (const zip::Entry& e : a.entries()) {
    std::vector<uint8_t> data = a.read(e);
    edit(e.name, data);
    w.add(e.name, data);
  }
  return w.finish();
}

void replace_once(std::vector<uint8_t>& data, const std::string& from, const std::string& to) {
  const std::string s(data.begin(), data.end());
  const size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  const std::string t = s.substr(0, at) + to + s.substr(at + from.size());
  data.assign(t.begin(), t.end());
}

std::string error_of(const std::vector<uint8_t>& bytes, const std::string& tensor = "") {
  try {
    const TorchFile f = TorchFile::parse(bytes, "crafted.pt");
    if (!tensor.empty()) f.floats(*f.root().get("model_state")->get(tensor), tensor);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TorchFile, ReadsTheRecipeCheckpoint) {
  const TorchFile f = TorchFile::open(kFixture);
  EXPECT_EQ(f.archive_name(), "recipe_checkpoint_last");
  const Value& root = f.root();
  ASSERT_TRUE(root.is(Value::Kind::kDict));
  for (const char* key : {"args", "model_config", "model_state", "optimizer_state", "scheduler_state", "rng_states",
                          "memory", "vocab", "amp_state", "epoch", "batch", "last_iter", "train_step",
                          "best_val_loss"})
    EXPECT_NE(root.get(key), nullptr) << key;
  EXPECT_EQ(root.get("args")->s, "argparse.Namespace");
  EXPECT_EQ(root.get("args")->get("optim")->s, "jitlamb");
  EXPECT_DOUBLE_EQ(root.get("args")->get("lr")->f, 0.01);
  EXPECT_EQ(root.get("args")->get("clamp_len")->i, -1);
  EXPECT_EQ(root.get("vocab")->s, "utils.vocabulary.Vocab");
  EXPECT_EQ(root.get("train_step")->i, 3);
  EXPECT_TRUE(root.get("best_val_loss")->is(Value::Kind::kNone));
  const Value* qkv = root.get("model_state")->get("layers.0.dec_attn.qkv_net.weight");
  ASSERT_NE(qkv, nullptr);
  EXPECT_EQ(qkv->tensor.shape, (std::vector<int64_t>{48, 16}));
  EXPECT_EQ(qkv->tensor.stride, (std::vector<int64_t>{16, 1}));
  EXPECT_EQ(f.floats(*qkv, "qkv").size(), 768u);
  // inv_freq = 1 / 10000^(2i/16)
  const std::vector<float> inv = f.floats(*root.get("model_state")->get("pos_emb.inv_freq"), "inv_freq");
  ASSERT_EQ(inv.size(), 8u);
  EXPECT_FLOAT_EQ(inv[0], 1.0f);
  EXPECT_NEAR(inv[1], 0.31622776f, 1e-7);
}

TEST(TorchFile, DeflatedEntriesReadTheSame) {
  const TorchFile stored = TorchFile::open(kFixture);
  const TorchFile deflated = TorchFile::open(kDeflated);
  for (const char* name : {"word_emb.emb_layers.0.weight", "layers.1.pos_ff.CoreNet.3.weight"}) {
    EXPECT_EQ(stored.floats(*stored.root().get("model_state")->get(name), name),
              deflated.floats(*deflated.root().get("model_state")->get(name), name));
  }
}

TEST(TorchFile, RewrittenArchiveIsReadBack) {
  const std::vector<uint8_t> bytes = rezip([](const std::string&, std::vector<uint8_t>&) {});
  EXPECT_EQ(error_of(bytes, "r_w_bias"), "");
}

TEST(TorchFile, DisallowedGlobalIsRefusedByName) {
  const std::vector<uint8_t> bytes = rezip([](const std::string& name, std::vector<uint8_t>& data) {
    if (name.ends_with("data.pkl")) replace_once(data, "argparse\nNamespace\n", "os\nsystem\n");
  });
  const std::string e = error_of(bytes);
  EXPECT_NE(e.find("global 'os.system'"), std::string::npos) << e;
  EXPECT_NE(e.find("not accept"), std::string::npos) << e;
}

TEST(TorchFile, TruncatedArchiveIsRefused) {
  std::vector<uint8_t> bytes = file_bytes(kFixture);
  bytes.resize(bytes.size() / 2);
  const std::string e = error_of(bytes);
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  // The central directory intact but the data cut: caught by the bounds checks too.
  std::vector<uint8_t> tail_cut = file_bytes(kFixture);
  tail_cut.resize(tail_cut.size() - 30);
  EXPECT_NE(error_of(tail_cut), "");
}

TEST(TorchFile, StorageShorterThanItsTensorIsRefused) {
  const std::vector<uint8_t> bytes = rezip([](const std::string& name, std::vector<uint8_t>& data) {
    if (name.ends_with("/data/0")) data.resize(32);  // r_w_bias needs 16 floats = 64 bytes
  });
  const std::string e = error_of(bytes, "r_w_bias");
  EXPECT_NE(e.find("storage '0'"), std::string::npos) << e;
  EXPECT_NE(e.find("holds 32 bytes"), std::string::npos) << e;
}

TEST(TorchFile, WrongDtypeIsRefused) {
  const std::vector<uint8_t> bytes = rezip([](const std::string& name, std::vector<uint8_t>& data) {
    if (name.ends_with("data.pkl")) replace_once(data, "torch\nFloatStorage\n", "torch\nLongStorage\n");
  });
  const std::string e = error_of(bytes, "r_w_bias");
  EXPECT_NE(e.find("dtype int64"), std::string::npos) << e;
}

TEST(TorchFile, CorruptEntryFailsItsCrc) {
  std::vector<uint8_t> bytes = file_bytes(kFixture);
  const zip::Archive a = zip::Archive::parse(bytes, "x");
  const zip::Entry* e = a.find("recipe_checkpoint_last/data/3");
  ASSERT_NE(e, nullptr);
  bytes[e->data_offset + 5] ^= 0x40;
  const std::string err = error_of(bytes, "layers.0.dec_attn.qkv_net.weight");
  EXPECT_NE(err.find("CRC-32"), std::string::npos) << err;
}

TEST(TorchFile, LegacyFormatIsRefusedWithAHint) {
  const std::vector<uint8_t> legacy = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  const std::string e = error_of(legacy);
  EXPECT_NE(e.find("legacy"), std::string::npos) << e;
}

// A strided view: the transpose of a 2 x 3 storage, offset by one element.
TEST(TorchFile, ViewOffsetAndStridesAreHonoured) {
  PickleWriter w;
  w.begin_dict();
  w.string("model_state");
  w.begin_ordered_dict();
  w.string("t");
  w.tensor(DType::kFloat32, "0", {3, 2});
  w.end_dict();
  w.end_dict();
  std::vector<uint8_t> pkl = w.finish();
  // Rewrite the (0, (3, 2), (2, 1)) of the writer's contiguous tensor as offset 1,
  // shape (3, 2), strides (1, 3): element [i][j] = storage[1 + i + 3j].
  const std::vector<uint8_t> contiguous = {'K', 0, '(', 'K', 3, 'K', 2, 't', '(', 'K', 2, 'K', 1, 't'};
  const std::vector<uint8_t> strided = {'K', 1, '(', 'K', 3, 'K', 2, 't', '(', 'K', 1, 'K', 3, 't'};
  auto it = std::search(pkl.begin(), pkl.end(), contiguous.begin(), contiguous.end());
  ASSERT_NE(it, pkl.end());
  std::copy(strided.begin(), strided.end(), it);
  // The persistent id says 6 elements; the storage holds 7 floats 0..6.
  const std::vector<uint8_t> six = {'K', 6, 't', 'Q'};
  auto n = std::search(pkl.begin(), pkl.end(), six.begin(), six.end());
  ASSERT_NE(n, pkl.end());
  n[1] = 7;
  std::vector<uint8_t> storage(7 * sizeof(float));
  for (int k = 0; k < 7; ++k) {
    const float v = static_cast<float>(k);
    std::memcpy(storage.data() + k * sizeof(float), &v, sizeof(float));
  }
  zip::Writer z;
  z.add("a/data.pkl", pkl);
  z.add("a/data/0", storage);
  const std::vector<uint8_t> bytes = z.finish();
  const TorchFile f = TorchFile::parse(bytes, "strided.pt");
  EXPECT_EQ(f.floats(*f.root().get("model_state")->get("t"), "t"), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  // One element further and the view leaves the storage.
  std::vector<uint8_t> pkl2 = pkl;
  auto it2 = std::search(pkl2.begin(), pkl2.end(), strided.begin(), strided.end());
  it2[1] = 2;
  zip::Writer z2;
  z2.add("a/data.pkl", pkl2);
  z2.add("a/data/0", storage);
  const std::vector<uint8_t> bytes2 = z2.finish();
  const TorchFile f2 = TorchFile::parse(bytes2, "strided.pt");
  try {
    f2.floats(*f2.root().get("model_state")->get("t"), "t");
    FAIL() << "a view past its storage was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reaches element 7"), std::string::npos) << e.what();
  }
}

// Written by torch.save (PyTorch 2.15) from w = arange(12).view(3, 4):
// t = w.t()[1:], h = w.half(), b = w.bfloat16()[:, 1], i = arange(5) (int64).
TEST(TorchFile, TorchMadeViewsAndDtypes) {
  const TorchFile f =
      TorchFile::open(std::string(TXL_SOURCE_DIR) + "/tests/fixtures/converted/torch_views_dtypes.pt");
  const Value* s = f.root().get("model_state");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->get("t")->tensor.stride, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(f.floats(*s->get("t"), "t"), (std::vector<float>{1, 5, 9, 2, 6, 10, 3, 7, 11}));
  std::vector<float> all(12);
  for (int k = 0; k < 12; ++k) all[static_cast<size_t>(k)] = static_cast<float>(k);
  EXPECT_EQ(f.floats(*s->get("h"), "h"), all);
  EXPECT_EQ(f.floats(*s->get("b"), "b"), (std::vector<float>{1, 5, 9}));
  EXPECT_EQ(f.ints(*s->get("i"), "i"), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_THROW(f.floats(*s->get("i"), "i"), Error);
  EXPECT_DOUBLE_EQ(f.root().get("best_val_loss")->f, 1.5);
}

// A view repeating its storage's elements (stride 0, as expand() makes) is refused, so
// memory stays bounded by the file's size.
TEST(TorchFile, ExpandedViewIsRefused) {
  PickleWriter w;
  w.begin_dict();
  w.string("t");
  w.tensor(DType::kFloat32, "0", {3, 2});
  w.end_dict();
  std::vector<uint8_t> pkl = w.finish();
  const std::vector<uint8_t> numel = {'K', 6, 't', 'Q'};
  auto n = std::search(pkl.begin(), pkl.end(), numel.begin(), numel.end());
  ASSERT_NE(n, pkl.end());
  n[1] = 2;
  const std::vector<uint8_t> strides = {'(', 'K', 2, 'K', 1, 't'};
  auto st = std::search(pkl.begin(), pkl.end(), strides.begin(), strides.end());
  ASSERT_NE(st, pkl.end());
  st[2] = 0;  // strides (0, 1): every row is the same two elements
  zip::Writer z;
  z.add("a/data.pkl", pkl);
  z.add("a/data/0", std::vector<uint8_t>(2 * sizeof(float), 0));
  const std::vector<uint8_t> bytes = z.finish();
  const TorchFile f = TorchFile::parse(bytes, "expanded.pt");
  try {
    f.floats(*f.root().get("t"), "t");
    FAIL() << "an expanded view was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has 6 elements but its storage '0' only 2"), std::string::npos) << e.what();
  }
}

TEST(PickleReader, MalformedStreamsGiveOneError) {
  const std::vector<std::vector<uint8_t>> bad = {
      {0x80, 2},                   // no STOP
      {0x80, 2, 'a', '.'},         // APPEND on an empty stack
      {0x80, 2, 'h', 9, '.'},      // memo entry never stored
      {0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f},  // string past the end
      {0x80, 2, 'K', 1, 'K', 2, '.'},          // two values left
      {0x80, 2, ']', 'K', 1, 's', '.'},        // SETITEM on a list
      {0x80, 2, 'c', 'o', 's', '\n', 's', 'y', 's', 't', 'e', 'm', '\n', '.'},
      {0x80, 2, 0xfe, '.'},  // unknown opcode
  };
  for (const auto& b : bad) {
    Document d;
    EXPECT_THROW(read_pickle(b, "bad.pkl", d), Error);
  }
}

}  // namespace
}  // namespace txl::pt
