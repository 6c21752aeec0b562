// One training job per work dir (docs/training.md §7, "One job per work dir"). The lock is
// the file WORK_DIR/txl.lock, created with O_CREAT|O_EXCL (atomic on local disks, Lustre,
// GPFS and NFSv3+), holding who holds it; its modification time is the holder's heartbeat,
// refreshed by a background thread. Where the file system supports POSIX record locks the
// holder also keeps an fcntl write lock on it, which proves a holder alive even across PID
// namespaces. A lock is stale, and taken over with a note, when
//   - its holder ran on this host, and its pid no longer runs (and no fcntl lock is held;
//     without fcntl support the heartbeat must also have missed two beats), or
//   - it belongs to an earlier run of the same SLURM job (a requeue: SLURM_RESTART_COUNT
//     is larger now), or
//   - its heartbeat is older than the stale timeout (another host: a dead node).
#pragma once
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace txl {

struct WorkDirLockOptions {
  double heartbeat_s = 30.0;     // TXL_LOCK_HEARTBEAT_S
  double stale_after_s = 600.0;  // TXL_LOCK_STALE_S: a heartbeat this old is a dead holder's
};
// The defaults, changed by the environment variables named above.
WorkDirLockOptions lock_options_from_environment();

// What a lock file says about its holder.
struct LockHolder {
  std::string host;
  int64_t pid = 0;
  std::string slurm_job;    // "" outside SLURM
  int64_t slurm_restart = 0;
  std::string started;      // UTC, ISO 8601
  std::string token;        // random, tells two holders apart
};
// The holder written into a new lock by this process.
LockHolder this_process_holder();
// "host H, pid P, SLURM job J" (the job only when there is one).
std::string describe_holder(const LockHolder& h);

class WorkDirLock {
 public:
  // Creates work_dir when missing and takes its lock. Throws txl::Error naming the holder
  // when another live job holds it. When a stale lock was taken over, `note` gets a line.
  static std::unique_ptr<WorkDirLock> acquire(const std::string& work_dir, const WorkDirLockOptions& options,
                                              std::string* note = nullptr);
  static std::string lock_path(const std::string& work_dir);
  // Stops the heartbeat and removes the lock file (when it is still this holder's); an
  // empty work dir this lock created is removed too.
  ~WorkDirLock();
  WorkDirLock(const WorkDirLock&) = delete;
  WorkDirLock& operator=(const WorkDirLock&) = delete;

  const LockHolder& holder() const { return holder_; }

 private:
  WorkDirLock(std::string work_dir, int fd, LockHolder holder, bool created_dir, double heartbeat_s);
  void beat();

  std::string work_dir_, path_;
  int fd_ = -1;
  LockHolder holder_;
  bool created_dir_ = false;
  double heartbeat_s_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread heartbeat_;
};

}  // namespace txl
