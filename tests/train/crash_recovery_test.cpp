// Fault injection against the txl_train / txl_eval binaries (issue: nothing lost, nothing
// silently wrong): two jobs in one work dir, a killed job's lock, a crash at each step of a
// checkpoint write (TXL_FAULT_POINT, include/txl/core/fault_point.h) and between it and
// the copy to checkpoint_best.h5, flipped bits in a checkpoint and in the corpus, a full
// disk during a checkpoint write, and corpora written before checksums and before format 2.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "train_test_util.h"
#include "txl/data/corpus.h"
#include "txl/io/h5file.h"
#include "txl/train/training_checkpoint.h"
#include "txl/train/work_dir_lock.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

// XORs 40 bytes in the middle of the first stored chunk of `dataset`.
void flip_bytes(const std::string& file, const std::string& dataset) {
  haddr_t address = 0;
  hsize_t size = 0;
  {
    const h5::File f = h5::File::open(file);
    h5::Handle ds(H5Dopen2(f.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
    ASSERT_TRUE(ds.valid()) << dataset;
    h5::Handle space(H5Dget_space(ds.get()), H5Sclose);
    hsize_t offset[8] = {};
    unsigned mask = 0;
    ASSERT_GE(H5Dget_chunk_info(ds.get(), space.get(), 0, offset, &mask, &address, &size), 0) << dataset;
  }
  ASSERT_GE(size, 80u);
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  const auto at = static_cast<std::streamoff>(address + size / 2 - 20);
  char bytes[40];
  io.seekg(at);
  io.read(bytes, sizeof(bytes));
  for (char& b : bytes) b = static_cast<char>(b ^ 0x5a);
  io.seekp(at);
  io.write(bytes, sizeof(bytes));
}

// Lines of a program's output that report an error.
int error_lines(const std::string& output) {
  int n = 0;
  size_t at = 0;
  while ((at = output.find("error:", at)) != std::string::npos) ++n, ++at;
  return n;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class CrashRecovery : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    TrainConfig cfg = test::tiny_train_config(dir_ + "/work");
    cfg.eval_max_steps = 2;
    config_file_ = test::write_preset_file(cfg, dir_ + "/tiny.yaml");
  }
  // txl_train with the preset, a work dir and extra arguments; `fault` sets TXL_FAULT_POINT.
  int train(const std::string& work, std::vector<std::string> extra, std::string* out,
            const std::string& fault = "") {
    std::vector<std::string> args{config_file_, "--work_dir", work};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!fault.empty()) ::setenv("TXL_FAULT_POINT", fault.c_str(), 1);
    const int rc = test::run_binary("txl_train", args, out);
    ::unsetenv("TXL_FAULT_POINT");
    return rc;
  }
  // The 12-step run the interrupted ones must end equal to (made once per test).
  std::string reference() {
    const std::string ref = dir_ + "/ref";
    if (!fs::exists(ref + "/checkpoint_last.h5")) {
      std::string out;
      EXPECT_EQ(train(ref, {"--max_step", "12"}, &out), 0) << out;
    }
    return ref + "/checkpoint_last.h5";
  }
  std::string dir_, config_file_;
};

TEST_F(CrashRecovery, ASecondJobInTheSameWorkDirIsRefusedNamingTheFirst) {
  const std::string work = dir_ + "/work";
  const pid_t first = test::start_binary(
      "txl_train", {config_file_, "--work_dir", work, "--max_step", "100000", "--eval_interval", "0"},
      dir_ + "/first.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(work + "/train_log.log") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::string out;
  const int rc = train(work, {"--max_step", "100000", "--restart", "auto"}, &out);
  ::kill(first, SIGTERM);
  EXPECT_EQ(test::wait_binary(first), 0) << "the first job goes on and stops cleanly";
  EXPECT_EQ(rc, 1) << out;
  EXPECT_EQ(error_lines(out), 1) << out;
  EXPECT_TRUE(contains(out, "is in use by another txl_train job")) << out;
  EXPECT_TRUE(contains(out, "pid " + std::to_string(first))) << out;
  EXPECT_FALSE(fs::exists(WorkDirLock::lock_path(work))) << "the first job removed its lock when it ended";
}

TEST_F(CrashRecovery, AKilledJobsLockIsTakenOverByTheNextRun) {
  const std::string work = dir_ + "/work";
  const pid_t first = test::start_binary(
      "txl_train", {config_file_, "--work_dir", work, "--max_step", "100000", "--eval_interval", "0"},
      dir_ + "/first.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(work + "/train_log.log") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_EQ(test::wait_binary(first), 128 + SIGKILL);
  ASSERT_TRUE(fs::exists(WorkDirLock::lock_path(work))) << "a killed job leaves its lock";
  std::string out;
  ASSERT_EQ(train(work, {"--max_step", "2", "--restart", "auto"}, &out), 0) << out;
  EXPECT_TRUE(contains(out, "took over the stale lock of host")) << out;
  EXPECT_TRUE(contains(out, "pid " + std::to_string(first))) << out;
  bool logged = false;
  for (const std::string& line : test::read_lines(work + "/train_log.log")) logged |= contains(line, "took over");
  EXPECT_TRUE(logged) << "the takeover is in the run's log";
}

// A crash at each step of the write sequence of the step-8 checkpoint (after a step-4
// one): a verified checkpoint always remains, --restart auto continues from the newest,
// and the run ends bit-identical to an uninterrupted one.
TEST_F(CrashRecovery, ACrashAtAnyPointOfACheckpointWriteLosesNothing) {
  const std::string ref = reference();
  const std::string base = dir_ + "/base";
  std::string out;
  ASSERT_EQ(train(base, {"--max_step", "4", "--eval_interval", "4"}, &out), 0) << out;
  struct Case {
    const char* point;
    const char* resumes_from;
    int64_t step;
  };
  const Case cases[] = {{"checkpoint:created", "checkpoint_last.h5", 4},
                        {"checkpoint:model", "checkpoint_last.h5", 4},
                        {"checkpoint:written", "checkpoint_last.h5", 4},
                        {"checkpoint:verified", "checkpoint_last.h5", 4},
                        {"checkpoint:rotated", "checkpoint_prev.h5", 4},
                        {"checkpoint:committed", "checkpoint_last.h5", 8}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.point);
    const std::string work = dir_ + "/" + std::string(c.point).substr(11);
    fs::copy(base, work, fs::copy_options::recursive);
    ASSERT_EQ(train(work, {"--max_step", "8", "--eval_interval", "4", "--restart", "auto"}, &out, c.point),
              128 + SIGKILL)
        << out;
    const auto choice = choose_restart_checkpoint(work);
    ASSERT_TRUE(choice.has_value());
    EXPECT_EQ(fs::path(choice->path).filename(), c.resumes_from);
    EXPECT_EQ(verify_training_checkpoint(choice->path), c.step);
    ASSERT_EQ(train(work, {"--max_step", "12", "--eval_interval", "4", "--restart", "auto"}, &out), 0) << out;
    EXPECT_TRUE(contains(out, fmt::format("resumed from {}/{} at step {}", work, c.resumes_from, c.step))) << out;
    EXPECT_EQ(test::compare_checkpoint_tensors(work + "/checkpoint_last.h5", ref), "");
    for (const std::string& name : test::list_dir(work)) EXPECT_FALSE(contains(name, ".tmp.")) << name;
  }
}

// A crash after checkpoint_last.h5 of a new best validation is committed but before its
// copy to checkpoint_best.h5 is (TXL_FAULT_POINT checkpoint:best_pending: nothing copied
// yet; checkpoint:copied: the copy written, not yet verified nor renamed): --restart auto
// makes the copy first, and checkpoint_best.h5 ends as the uninterrupted run's.
TEST_F(CrashRecovery, ACrashBeforeTheBestCopyLeavesTheSameBestCheckpoint) {
  const std::string ref = dir_ + "/ref";
  std::string out;
  ASSERT_EQ(train(ref, {"--max_step", "12", "--eval_interval", "4"}, &out), 0) << out;
  const TrainingState ref_best = TrainingCheckpoint::open(ref + "/checkpoint_best.h5").state();
  ASSERT_GT(ref_best.step, 4) << "the test needs a best validation after step 4";
  const std::string base = dir_ + "/base";
  ASSERT_EQ(train(base, {"--max_step", "4", "--eval_interval", "4"}, &out), 0) << out;
  for (const char* point : {"checkpoint:best_pending", "checkpoint:copied"}) {
    SCOPED_TRACE(point);
    const std::string work = dir_ + "/" + std::string(point).substr(11);
    fs::copy(base, work, fs::copy_options::recursive);
    // Stopped at the first best validation after step 4 (ref_best.step or earlier).
    ASSERT_EQ(train(work, {"--max_step", "12", "--eval_interval", "4", "--restart", "auto"}, &out, point),
              128 + SIGKILL)
        << out;
    const int64_t crashed_at = verify_training_checkpoint(work + "/checkpoint_last.h5");
    EXPECT_EQ(TrainingCheckpoint::open(work + "/checkpoint_best.h5").state().step, 4) << "the copy was not made";
    ASSERT_EQ(train(work, {"--max_step", "12", "--eval_interval", "4", "--restart", "auto"}, &out), 0) << out;
    EXPECT_TRUE(contains(out, "restart: copied to " + work + "/checkpoint_best.h5")) << out;
    EXPECT_TRUE(contains(out, fmt::format("at step {} stopped before copying it", crashed_at))) << out;
    const TrainingState best = TrainingCheckpoint::open(work + "/checkpoint_best.h5").state();
    EXPECT_EQ(best.step, ref_best.step);
    EXPECT_EQ(best.best_val_loss, ref_best.best_val_loss);
    EXPECT_EQ(test::compare_checkpoint_tensors(work + "/checkpoint_best.h5", ref + "/checkpoint_best.h5"), "");
    EXPECT_EQ(test::compare_checkpoint_tensors(work + "/checkpoint_last.h5", ref + "/checkpoint_last.h5"), "");
    for (const std::string& name : test::list_dir(work)) EXPECT_FALSE(contains(name, ".tmp.")) << name;
  }
}

// Restarting from a checkpoint whose validation was not a new best copies nothing.
TEST_F(CrashRecovery, ARestartAfterAValidationWithoutImprovementCopiesNothing) {
  const std::string work = dir_ + "/work";
  std::string out;
  ASSERT_EQ(train(work, {"--max_step", "4", "--eval_interval", "4"}, &out), 0) << out;
  ASSERT_EQ(train(work, {"--max_step", "8", "--eval_interval", "4", "--restart", "auto"}, &out), 0) << out;
  EXPECT_FALSE(contains(out, "restart: copied")) << out;
}

TEST_F(CrashRecovery, ACorruptCheckpointLastFallsBackToThePreviousOne) {
  const std::string ref = reference();
  const std::string work = dir_ + "/work";
  std::string out;
  ASSERT_EQ(train(work, {"--max_step", "8", "--eval_interval", "4"}, &out), 0) << out;
  flip_bytes(work + "/checkpoint_last.h5", "/model/layers.0.dec_attn.qkv_net.weight");
  ASSERT_EQ(train(work, {"--max_step", "12", "--eval_interval", "4", "--restart", "auto"}, &out), 0) << out;
  EXPECT_TRUE(contains(out, "passing over " + work + "/checkpoint_last.h5")) << out;
  EXPECT_TRUE(contains(out, "checksum mismatch")) << out;
  EXPECT_TRUE(contains(out, "falling back to " + work + "/checkpoint_prev.h5 (step 4)")) << out;
  EXPECT_TRUE(fs::exists(work + "/checkpoint_last.h5.corrupt")) << "the corrupt file is kept, renamed";
  EXPECT_EQ(test::compare_checkpoint_tensors(work + "/checkpoint_last.h5", ref), "");
}

TEST_F(CrashRecovery, AFlippedBitInACheckpointIsRefusedWithOneLine) {
  const std::string work = dir_ + "/work";
  std::string out;
  ASSERT_EQ(train(work, {"--max_step", "4", "--eval_interval", "4"}, &out), 0) << out;
  const std::string bad = dir_ + "/bad.h5";
  fs::copy_file(work + "/checkpoint_last.h5", bad);
  const std::string dataset = "/model/layers.1.pos_ff.CoreNet.0.weight";
  flip_bytes(bad, dataset);
  EXPECT_EQ(test::run_binary("txl_eval", {"--model", bad, "--split", "valid"}, &out), 1) << out;
  EXPECT_EQ(error_lines(out), 1) << out;
  EXPECT_TRUE(contains(out, bad + ": ") && contains(out, dataset) && contains(out, "checksum mismatch")) << out;
  EXPECT_EQ(train(dir_ + "/resumed", {"--max_step", "8", "--restart", bad}, &out), 1) << out;
  EXPECT_EQ(error_lines(out), 1) << out;
  EXPECT_TRUE(contains(out, dataset) && contains(out, "checksum mismatch")) << out;
}

TEST_F(CrashRecovery, AFlippedBitInTheCorpusIsRefusedWithOneLine) {
  const std::string corpus = dir_ + "/corpus.h5";
  fs::copy_file(test::wt2_corpus(), corpus);
  flip_bytes(corpus, "/train/tokens");
  std::string out;
  const std::string work = dir_ + "/work";
  EXPECT_EQ(train(work, {"--data", corpus, "--max_step", "4"}, &out), 1) << out;
  EXPECT_EQ(error_lines(out), 1) << out;
  EXPECT_TRUE(contains(out, corpus + ": ") && contains(out, "'/train/tokens'") && contains(out, "checksum mismatch"))
      << out;
  EXPECT_FALSE(fs::exists(work)) << "nothing was written";
}

// A corpus of an earlier txl_prep (tokens stored without checksums) still trains and
// still passes txl_prep --verify.
TEST_F(CrashRecovery, ACorpusWithoutChecksumsStillLoads) {
  const std::string corpus = dir_ + "/old.h5";
  fs::copy_file(test::wt2_corpus(), corpus);
  {
    h5::File f = h5::File::open(corpus, true);
    const std::vector<int32_t> tokens = f.read<int32_t>("/valid/tokens");
    const std::string sha = f.attr_string("/valid/tokens", "sha256");
    ASSERT_TRUE(f.has_checksum("/valid/tokens"));
    ASSERT_GE(H5Ldelete(f.id(), "/valid/tokens", H5P_DEFAULT), 0);
    const hsize_t n = tokens.size();
    h5::Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    h5::Handle ds(H5Dcreate2(f.id(), "/valid/tokens", H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT),
                  H5Dclose);
    ASSERT_GE(H5Dwrite(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens.data()), 0);
    ds.reset();
    f.set_attr("/valid/tokens", "sha256", sha);
  }
  const data::CorpusFile c = data::CorpusFile::open(corpus);
  EXPECT_FALSE(c.file().has_checksum("/valid/tokens"));
  EXPECT_EQ(c.read_tokens("valid", 0, 5), data::CorpusFile::open(test::wt2_corpus()).read_tokens("valid", 0, 5));
  std::string out;
  EXPECT_EQ(test::run_binary("txl_prep", {"--verify", corpus}, &out), 0) << out;
  EXPECT_EQ(train(dir_ + "/work", {"--data", corpus, "--max_step", "2"}, &out), 0) << out;
}

// A corpus of format version 1 (vocabulary symbols as variable-length HDF5 strings, as
// txl_prep wrote them before format 2) still loads with the same vocabulary and checksum,
// passes txl_prep --verify and trains; a format-2 file with such a dataset is refused.
TEST_F(CrashRecovery, ACorpusOfFormatVersion1StillLoads) {
  const std::string corpus = dir_ + "/v1.h5";
  fs::copy_file(test::wt2_corpus(), corpus);
  const data::CorpusFile current = data::CorpusFile::open(test::wt2_corpus());
  ASSERT_EQ(current.format_version(), 2);
  const std::vector<std::string>& symbols = current.vocabulary().symbols();
  const auto make_vlen_symbols = [&](int64_t version) {
    h5::File f = h5::File::open(corpus, true);
    const std::string sha = f.attr_string("/vocab/symbols", "sha256");
    ASSERT_TRUE(f.is_string_list("/vocab/symbols"));
    ASSERT_GE(H5Ldelete(f.id(), "/vocab/symbols", H5P_DEFAULT), 0);
    std::vector<const char*> ptrs;
    for (const std::string& s : symbols) ptrs.push_back(s.c_str());
    h5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    const hsize_t n = ptrs.size();
    h5::Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    h5::Handle ds(H5Dcreate2(f.id(), "/vocab/symbols", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT),
                  H5Dclose);
    ASSERT_GE(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), 0);
    ds.reset();
    f.set_attr("/vocab/symbols", "sha256", sha);
    f.set_attr("/", "format_version", version);
  };
  make_vlen_symbols(1);
  const data::CorpusFile old = data::CorpusFile::open(corpus);
  EXPECT_FALSE(old.file().is_string_list("/vocab/symbols"));
  EXPECT_EQ(old.format_version(), 1);
  EXPECT_EQ(old.vocabulary().symbols(), symbols);
  EXPECT_EQ(old.checksum(), current.checksum()) << "the corpus identity does not depend on the format";
  std::string out;
  EXPECT_EQ(test::run_binary("txl_prep", {"--verify", corpus}, &out), 0) << out;
  EXPECT_EQ(train(dir_ + "/work", {"--data", corpus, "--max_step", "2"}, &out), 0) << out;

  fs::remove(corpus);
  fs::copy_file(test::wt2_corpus(), corpus);
  make_vlen_symbols(2);
  EXPECT_EQ(test::run_binary("txl_prep", {"--verify", corpus}, &out), 1) << out;
  EXPECT_EQ(error_lines(out), 1) << out;
  EXPECT_TRUE(contains(out, "'/vocab/symbols' is not a string list")) << out;
}

// A full disk (here: a file-size limit) while writing the step-8 checkpoint: one line, a
// non-zero exit, and the step-4 checkpoint intact; no temporary is left.
TEST_F(CrashRecovery, AFullDiskDuringACheckpointWriteKeepsThePreviousOne) {
  const std::string work = dir_ + "/work";
  std::string out;
  ASSERT_EQ(train(work, {"--max_step", "4", "--eval_interval", "4"}, &out), 0) << out;
  const auto size = fs::file_size(work + "/checkpoint_last.h5");
  const std::string log = dir_ + "/full.log";
  const std::string command = fmt::format(
      "ulimit -f {}; trap '' XFSZ; exec {} {} --work_dir {} --max_step 8 --eval_interval 4 --restart auto > {} 2>&1",
      size / 1024 / 2, test::binary_path("txl_train"), config_file_, work, log);
  const int status = std::system(("/bin/bash -c \"" + command + "\"").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::ifstream in(log);
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  EXPECT_EQ(error_lines(out), 1) << out;
  EXPECT_TRUE(contains(out, "checkpoint_last.h5")) << out;
  EXPECT_EQ(verify_training_checkpoint(work + "/checkpoint_last.h5"), 4);
  for (const std::string& name : test::list_dir(work)) EXPECT_FALSE(contains(name, ".tmp.")) << name;
}

}  // namespace
}  // namespace txl
