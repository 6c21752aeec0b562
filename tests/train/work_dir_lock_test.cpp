// The work-dir lock (include/txl/train/work_dir_lock.h): a second holder is refused with
// the first named; stale locks (dead process on this host, old heartbeat of another host,
// an earlier run of a requeued SLURM job, an unreadable old file) are taken over.
#include "txl/train/work_dir_lock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "train_test_util.h"
#include "txl/core/error.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

// The pid of a process that has ended (a child that exited and was reaped).
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

void write_lock(const std::string& dir, const LockHolder& h) {
  fs::create_directories(dir);
  std::ofstream(WorkDirLock::lock_path(dir)) << "txl work_dir lock\nhost=" << h.host << "\npid=" << h.pid
                                              << "\nslurm_job=" << h.slurm_job << "\nslurm_restart=" << h.slurm_restart
                                              << "\nstarted=" << h.started << "\ntoken=" << h.token << "\n";
}

void age_file(const std::string& path, double seconds) {
  const auto now = std::chrono::system_clock::now() - std::chrono::duration<double>(seconds);
  const double t = std::chrono::duration<double>(now.time_since_epoch()).count();
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(t);
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

double file_age(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return now - static_cast<double>(st.st_mtim.tv_sec);
}

std::string refusal(const std::string& dir, const WorkDirLockOptions& o = {}) {
  try {
    WorkDirLock::acquire(dir, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(WorkDirLock, HoldsTheWorkDirAndCleansUpAfterItself) {
  const std::string dir = test::fresh_dir("lock_basic") + "/work";
  {
    auto lock = WorkDirLock::acquire(dir, {});
    ASSERT_TRUE(fs::exists(WorkDirLock::lock_path(dir)));
    EXPECT_EQ(lock->holder().pid, ::getpid());
  }
  EXPECT_FALSE(fs::exists(WorkDirLock::lock_path(dir)));
  EXPECT_FALSE(fs::exists(dir)) << "the empty work dir the lock created is removed";
}

TEST(WorkDirLock, ASecondHolderIsRefusedWithTheFirstNamed) {
  const std::string dir = test::fresh_dir("lock_second");
  auto first = WorkDirLock::acquire(dir, {});
  const std::string msg = refusal(dir);
  EXPECT_NE(msg.find("is in use by another txl_train job"), std::string::npos) << msg;
  EXPECT_NE(msg.find("pid " + std::to_string(::getpid())), std::string::npos) << msg;
  EXPECT_NE(msg.find("host " + first->holder().host), std::string::npos) << msg;
  EXPECT_NE(msg.find("txl.lock"), std::string::npos) << msg;
  EXPECT_TRUE(fs::exists(WorkDirLock::lock_path(dir))) << "the refused attempt leaves the holder's lock alone";
}

TEST(WorkDirLock, TheLockOfADeadProcessOnThisHostIsTakenOver) {
  const std::string dir = test::fresh_dir("lock_dead");
  LockHolder h = this_process_holder();
  h.pid = dead_pid();
  h.token = "deadbeef";
  write_lock(dir, h);
  std::string note;
  auto lock = WorkDirLock::acquire(dir, {}, &note);
  EXPECT_NE(note.find("took over the stale lock of host " + h.host + ", pid " + std::to_string(h.pid)),
            std::string::npos)
      << note;
  EXPECT_NE(note.find("no longer runs"), std::string::npos) << note;
  EXPECT_EQ(lock->holder().pid, ::getpid());
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string(), "txl.lock") << "no stale copies are left";
}

TEST(WorkDirLock, AnotherHostsLockIsStaleOnlyWhenItsHeartbeatIsOld) {
  const std::string dir = test::fresh_dir("lock_other_host");
  LockHolder h = this_process_holder();
  h.host = "some-other-node";
  h.pid = 1;
  h.slurm_job = "4242";
  h.token = "cafe";
  write_lock(dir, h);
  WorkDirLockOptions o;
  o.stale_after_s = 300;
  const std::string msg = refusal(dir, o);
  EXPECT_NE(msg.find("host some-other-node, pid 1, SLURM job 4242"), std::string::npos) << msg;
  age_file(WorkDirLock::lock_path(dir), 301);
  std::string note;
  auto lock = WorkDirLock::acquire(dir, o, &note);
  EXPECT_NE(note.find("heartbeat is 30"), std::string::npos) << note;
}

TEST(WorkDirLock, ALockOfAnEarlierRunOfARequeuedSlurmJobIsTakenOver) {
  const std::string dir = test::fresh_dir("lock_requeue");
  LockHolder h = this_process_holder();
  h.host = "node-that-died";
  h.slurm_job = "777";
  h.slurm_restart = 0;
  h.token = "f00d";
  write_lock(dir, h);
  ::setenv("SLURM_JOB_ID", "777", 1);
  ::setenv("SLURM_RESTART_COUNT", "1", 1);
  std::string note;
  try {
    auto lock = WorkDirLock::acquire(dir, {}, &note);
  } catch (const Error& e) {
    ADD_FAILURE() << e.what();
  }
  ::unsetenv("SLURM_JOB_ID");
  ::unsetenv("SLURM_RESTART_COUNT");
  EXPECT_NE(note.find("requeued"), std::string::npos) << note;
}

TEST(WorkDirLock, AnUnreadableLockIsRefusedWhileFreshAndTakenOverWhenOld) {
  const std::string dir = test::fresh_dir("lock_garbage");
  fs::create_directories(dir);
  std::ofstream(WorkDirLock::lock_path(dir)) << "\x01garbage";
  WorkDirLockOptions o;
  o.stale_after_s = 60;
  EXPECT_NE(refusal(dir, o).find("cannot be read"), std::string::npos);
  age_file(WorkDirLock::lock_path(dir), 120);
  std::string note;
  auto lock = WorkDirLock::acquire(dir, o, &note);
  EXPECT_NE(note.find("unreadable lock"), std::string::npos) << note;
}

TEST(WorkDirLock, TheHeartbeatRefreshesTheLocksTime) {
  const std::string dir = test::fresh_dir("lock_heartbeat");
  WorkDirLockOptions o;
  o.heartbeat_s = 0.02;
  auto lock = WorkDirLock::acquire(dir, o);
  const std::string path = WorkDirLock::lock_path(dir);
  age_file(path, 1000);
  ASSERT_GT(file_age(path), 900);
  for (int i = 0; i < 2000 && file_age(path) > 900; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_LT(file_age(path), 900) << "the heartbeat never touched the lock";
}

TEST(WorkDirLock, BadTimeoutsInTheEnvironmentAreOneLine) {
  ::setenv("TXL_LOCK_STALE_S", "soon", 1);
  std::string msg;
  try {
    lock_options_from_environment();
  } catch (const Error& e) {
    msg = e.what();
  }
  ::unsetenv("TXL_LOCK_STALE_S");
  EXPECT_NE(msg.find("TXL_LOCK_STALE_S=soon"), std::string::npos) << msg;
}

}  // namespace
}  // namespace txl
