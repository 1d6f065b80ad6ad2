#include "lepton/io.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <sodium.h>

#include "lepton/error.hpp"

namespace lepton {
namespace {

std::string errno_text(int error_number) { return std::strerror(error_number); }

// Closes the descriptor when it goes out of scope, so that every early throw releases it.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

  int get() const { return fd_; }

  /// Closes now and returns 0, or the errno of a failed close (which can report a delayed write error).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

void write_all(int fd, const std::string& bytes, const std::string& temp_path) {
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t result = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (result < 0 && errno == EINTR) {
      continue;
    }
    if (result < 0) {
      throw IoError(fmt::format("failed to write temporary file '{}': {}", temp_path, errno_text(errno)));
    }
    written += static_cast<std::size_t>(result);
  }
}

// Writes, flushes to disk and renames. The caller removes the temporary file if this throws.
void write_and_rename(const std::string& path, const std::string& temp_path, const std::string& bytes) {
  FileDescriptor file(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (file.get() < 0) {
    throw IoError(fmt::format("failed to create temporary file '{}' for '{}': {}; check that the folder exists "
                              "and is writable",
                              temp_path, path, errno_text(errno)));
  }

  write_all(file.get(), bytes, temp_path);

  if (::fsync(file.get()) != 0) {
    throw IoError(fmt::format("failed to flush temporary file '{}' to disk: {}", temp_path, errno_text(errno)));
  }
  if (const int error_number = file.close(); error_number != 0) {
    throw IoError(fmt::format("failed to close temporary file '{}': {}", temp_path, errno_text(error_number)));
  }

  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    throw IoError(fmt::format("failed to rename '{}' to '{}': {}", temp_path, path, errno_text(errno)));
  }
}

}  // namespace

std::string read_file(const std::string& path) {
  FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) {
    const int error_number = errno;
    if (error_number == ENOENT) {
      throw FileNotFound(fmt::format("file '{}' not found; check the path", path));
    }
    throw IoError(fmt::format("failed to open '{}': {}", path, errno_text(error_number)));
  }

  struct stat info {};
  if (::fstat(file.get(), &info) == 0 && S_ISDIR(info.st_mode)) {
    throw IoError(fmt::format("failed to read '{}': it is a folder; pass the path of a file", path));
  }

  // st_size is only a hint for the first buffer: the loop reads until end of file, so a file that
  // grows or a pipe without a size is still read whole.
  std::string bytes;
  std::size_t capacity = info.st_size > 0 ? static_cast<std::size_t>(info.st_size) + 1 : 65536;
  bytes.resize(capacity);
  std::size_t used = 0;
  while (true) {
    if (used == bytes.size()) {
      bytes.resize(bytes.size() * 2);
    }
    const ssize_t result = ::read(file.get(), bytes.data() + used, bytes.size() - used);
    if (result < 0 && errno == EINTR) {
      continue;
    }
    if (result < 0) {
      throw IoError(fmt::format("failed to read '{}': {}", path, errno_text(errno)));
    }
    if (result == 0) {
      break;
    }
    used += static_cast<std::size_t>(result);
  }
  bytes.resize(used);
  return bytes;
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  // NOTE: the temporary name depends only on the process id, so two threads of one process that
  // write the same path at the same time share a temporary file. Callers serialize such writes.
  const std::string temp_path = fmt::format("{}.tmp-{}", path, static_cast<long>(::getpid()));

  try {
    write_and_rename(path, temp_path, bytes);
  } catch (...) {
    ::unlink(temp_path.c_str());
    throw;
  }
}

std::string sha256_hex(const std::string& bytes) {
  // call_once makes the first use thread-safe without relying on sodium_init's own guarantees.
  static std::once_flag init_flag;
  static int init_result = 0;
  std::call_once(init_flag, [] { init_result = sodium_init(); });
  if (init_result < 0) {
    throw InternalError("libsodium failed to initialize (sodium_init returned -1)");
  }

  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());

  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex, crypto_hash_sha256_BYTES * 2);
}

}  // namespace lepton
