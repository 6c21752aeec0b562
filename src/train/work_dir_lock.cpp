#include "txl/train/work_dir_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "txl/core/error.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

const char* const kLockName = "txl.lock";
const char* const kHeader = "txl work_dir lock";

double env_seconds(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(x > 0)) failf("{}={}: expected a positive number of seconds", name, v);
  return x;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string random_token() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

std::string serialize(const LockHolder& h) {
  return fmt::format("{}\nhost={}\npid={}\nslurm_job={}\nslurm_restart={}\nstarted={}\ntoken={}\n", kHeader, h.host,
                     h.pid, h.slurm_job, h.slurm_restart, h.started, h.token);
}

// False when the text is not a complete lock (being written, or damaged).
bool parse(const std::string& text, LockHolder* h) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kHeader) return false;
  int fields = 0;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) return false;
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    try {
      if (key == "host") h->host = value;
      else if (key == "pid") h->pid = std::stoll(value);
      else if (key == "slurm_job") h->slurm_job = value;
      else if (key == "slurm_restart") h->slurm_restart = std::stoll(value);
      else if (key == "started") h->started = value;
      else if (key == "token") h->token = value;
      else continue;
    } catch (const std::exception&) {
      return false;
    }
    ++fields;
  }
  return fields == 6 && !h->token.empty();
}

// What a look at an existing lock file found.
struct Inspection {
  bool gone = false;        // the file vanished meanwhile: try again
  bool parsed = false;
  LockHolder holder;
  double age_s = 0.0;       // since the last heartbeat
  int record_lock = -1;     // fcntl: 1 held by a process, 0 not held, -1 unsupported
};

Inspection inspect(const std::string& path) {
  Inspection r;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) r.gone = true;
    else failf("work_dir: cannot read the lock {}: {}", path, std::strerror(errno));
    return r;
  }
  std::string text;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0 && text.size() < 65536) text.append(buf, static_cast<size_t>(n));
  r.parsed = parse(text, &r.holder);
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    const double mtime = static_cast<double>(st.st_mtim.tv_sec) + 1e-9 * static_cast<double>(st.st_mtim.tv_nsec);
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    r.age_s = std::max(0.0, std::chrono::duration<double>(now).count() - mtime);
  }
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  if (::fcntl(fd, F_GETLK, &probe) == 0) r.record_lock = probe.l_type == F_UNLCK ? 0 : 1;
  ::close(fd);
  return r;
}

bool process_runs(int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Why the lock is stale, or "" when its holder may be alive.
std::string stale_reason(const Inspection& in, const LockHolder& me, const WorkDirLockOptions& o) {
  if (!in.parsed) {
    if (in.age_s > o.stale_after_s) return fmt::format("unreadable lock, untouched for {:.0f} s", in.age_s);
    return "";
  }
  const LockHolder& h = in.holder;
  if (in.record_lock == 1) return "";  // a process holds its fcntl lock: alive
  if (h.host == me.host && !process_runs(h.pid)) {
    if (in.record_lock == 0) return fmt::format("process {} no longer runs on {}", h.pid, h.host);
    if (in.age_s > 2.0 * o.heartbeat_s)
      return fmt::format("process {} no longer runs on {} (last heartbeat {:.0f} s ago)", h.pid, h.host, in.age_s);
  }
  if (!h.slurm_job.empty() && h.slurm_job == me.slurm_job && h.slurm_restart < me.slurm_restart)
    return fmt::format("it is the lock of run {} of this SLURM job, which was requeued (now run {})", h.slurm_restart,
                       me.slurm_restart);
  if (in.age_s > o.stale_after_s)
    return fmt::format("its heartbeat is {:.0f} s old (stale after {:.0f} s: TXL_LOCK_STALE_S)", in.age_s,
                       o.stale_after_s);
  return "";
}

std::string read_token(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  LockHolder h;
  return parse(ss.str(), &h) ? h.token : "";
}

}  // namespace

WorkDirLockOptions lock_options_from_environment() {
  WorkDirLockOptions o;
  o.heartbeat_s = env_seconds("TXL_LOCK_HEARTBEAT_S", o.heartbeat_s);
  o.stale_after_s = env_seconds("TXL_LOCK_STALE_S", o.stale_after_s);
  return o;
}

LockHolder this_process_holder() {
  LockHolder h;
  h.host = host_name();
  h.pid = static_cast<int64_t>(::getpid());
  if (const char* job = std::getenv("SLURM_JOB_ID")) h.slurm_job = job;
  if (const char* rc = std::getenv("SLURM_RESTART_COUNT")) h.slurm_restart = std::atoll(rc);
  h.started = utc_now();
  h.token = random_token();
  return h;
}

std::string describe_holder(const LockHolder& h) {
  std::string s = fmt::format("host {}, pid {}", h.host, h.pid);
  if (!h.slurm_job.empty()) s += fmt::format(", SLURM job {}", h.slurm_job);
  return s;
}

std::string WorkDirLock::lock_path(const std::string& work_dir) { return (fs::path(work_dir) / kLockName).string(); }

std::unique_ptr<WorkDirLock> WorkDirLock::acquire(const std::string& work_dir, const WorkDirLockOptions& options,
                                                  std::string* note) {
  std::error_code ec;
  const bool existed = fs::is_directory(work_dir, ec);
  if (!existed) {
    fs::create_directories(work_dir, ec);
    if (ec) failf("work_dir: cannot create {}: {}", work_dir, ec.message());
  }
  const std::string path = lock_path(work_dir);
  const LockHolder me = this_process_holder();
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      const std::string text = serialize(me);
      const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
      if (!written) {
        const int err = errno;
        ::close(fd);
        ::unlink(path.c_str());
        failf("work_dir: cannot write the lock {}: {}", path, std::strerror(err));
      }
      struct flock lk {};
      lk.l_type = F_WRLCK;
      lk.l_whence = SEEK_SET;
      (void)::fcntl(fd, F_SETLK, &lk);  // where unsupported (ENOLCK, ENOSYS) the heartbeat decides alone
      return std::unique_ptr<WorkDirLock>(new WorkDirLock(work_dir, fd, me, !existed, options.heartbeat_s));
    }
    if (errno != EEXIST) failf("work_dir: cannot create the lock {}: {}", path, std::strerror(errno));

    const Inspection in = inspect(path);
    if (in.gone) continue;
    const std::string reason = stale_reason(in, me, options);
    if (reason.empty()) {
      if (!in.parsed)
        failf("work_dir: {} is locked by {} which cannot be read (being written, or damaged); if no job uses this "
              "work dir, remove the lock and start again",
              work_dir, path);
      failf("work_dir: {} is in use by another txl_train job ({}, started {}, heartbeat {:.0f} s ago); wait for it to "
            "end or stop it, or choose another work_dir (if that job is gone, remove {})",
            work_dir, describe_holder(in.holder), in.holder.started, in.age_s, path);
    }
    // Take the stale lock out of the way under a name of our own; confirm that what we
    // moved is the lock we judged (another job may have replaced it meanwhile).
    const std::string aside = fmt::format("{}.stale.{}.{}", path, me.host, me.pid);
    if (::rename(path.c_str(), aside.c_str()) != 0) {
      if (errno == ENOENT) continue;
      failf("work_dir: cannot move the stale lock {} aside: {}", path, std::strerror(errno));
    }
    if (in.parsed && read_token(aside) != in.holder.token) {
      // Not the one we judged stale: put it back (link refuses to replace a new lock).
      if (::link(aside.c_str(), path.c_str()) == 0) ::unlink(aside.c_str());
      failf("work_dir: the lock {} changed hands while this job took over a stale one; start again", path);
    }
    ::unlink(aside.c_str());
    if (note != nullptr)
      *note = fmt::format("work_dir lock: took over the stale lock of {} ({})",
                          in.parsed ? describe_holder(in.holder) : std::string("an unknown holder"), reason);
  }
  failf("work_dir: could not take the lock {} (it kept changing hands)", path);
}

WorkDirLock::WorkDirLock(std::string work_dir, int fd, LockHolder holder, bool created_dir, double heartbeat_s)
    : work_dir_(std::move(work_dir)), path_(lock_path(work_dir_)), fd_(fd), holder_(std::move(holder)),
      created_dir_(created_dir), heartbeat_s_(heartbeat_s) {
  heartbeat_ = std::thread([this] { beat(); });
}

void WorkDirLock::beat() {
  std::unique_lock<std::mutex> lock(mutex_);
  bool warned = false;
  const auto period = std::chrono::duration<double>(heartbeat_s_);
  while (!wake_.wait_for(lock, period, [this] { return stopping_; })) {
    ::futimens(fd_, nullptr);
    struct stat st {};
    if (!warned && ::fstat(fd_, &st) == 0 && st.st_nlink == 0) {
      std::fprintf(stderr, "warning: work_dir lock %s was removed by someone else; this job no longer holds it\n",
                   path_.c_str());
      warned = true;
    }
  }
}

WorkDirLock::~WorkDirLock() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (read_token(path_) == holder_.token) ::unlink(path_.c_str());
  ::close(fd_);
  if (created_dir_) {
    std::error_code ec;
    if (fs::is_empty(work_dir_, ec) && !ec) fs::remove(work_dir_, ec);
  }
}

}  // namespace txl
