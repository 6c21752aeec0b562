#include "txl/programs/corpus_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "txl/core/error.h"
#include "txl/data/prep/prep.h"

namespace txl {
namespace {

namespace fs = std::filesystem;

// Holds an exclusive flock on a file for its lifetime.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) failf("data: cannot create the lock file {}: {}", path, std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd_);
      failf("data: cannot lock {}: {}", path, std::strerror(err));
    }
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

std::string prepare_locked(const std::string& directory, const std::string& dataset, const std::string& out) {
  FileLock lock(out + ".lock");
  if (fs::exists(out)) return fmt::format("data: {} is a corpus directory; using {}", directory, out);
  data::prep::PrepOptions o;
  o.dataset = dataset;
  o.data = directory;
  o.out = out;
  const data::prep::PrepSummary s = data::prep::prepare_corpus(o);
  return fmt::format("data: {} is a corpus directory; prepared it as {} ({} corpus, vocabulary {})", directory, out,
                     dataset, s.n_token);
}

}  // namespace

std::string corpus_file_in_directory(const std::string& directory, const std::string& dataset) {
  return (fs::path(directory) / fmt::format("txl_{}.h5", dataset)).string();
}

std::string prepare_corpus_directory(const std::string& directory, const std::string& dataset, Communicator& comm) {
  const std::string out = corpus_file_in_directory(directory, dataset);
  std::string line, error;
  if (comm.rank() == 0) {
    try {
      line = prepare_locked(directory, dataset, out);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  int failed = error.empty() ? 0 : 1;
  comm.broadcast(&failed, sizeof(failed), 0);
  if (failed) {
    if (comm.rank() == 0) fail(error);
    failf("data: rank 0 could not prepare the corpus directory {}", directory);
  }
  return line;
}

}  // namespace txl
