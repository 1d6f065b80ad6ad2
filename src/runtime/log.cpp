#include "lepton/log.hpp"

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace lepton {
namespace {

std::atomic<LogLevel> g_level{LogLevel::Off};

// The sink sits behind a shared_ptr, so log() calls it outside the lock. A sink that logs or replaces
// the sink therefore does not deadlock, and a slow sink does not block set_log_sink().
std::mutex g_sink_mutex;
std::shared_ptr<const LogSink> g_sink;

std::shared_ptr<const LogSink> current_sink() {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  return g_sink;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
    case LogLevel::Off: return "off";
  }
  return "unknown";
}

}  // namespace

void set_log_sink(LogSink sink) {
  std::shared_ptr<const LogSink> replacement;
  if (sink) {
    replacement = std::make_shared<const LogSink>(std::move(sink));
  }

  std::lock_guard<std::mutex> lock(g_sink_mutex);
  g_sink = std::move(replacement);
}

void set_log_level(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }

LogLevel log_level() noexcept { return g_level.load(std::memory_order_relaxed); }

void log(LogLevel level, std::string_view message) {
  const LogLevel threshold = log_level();
  if (level == LogLevel::Off || threshold == LogLevel::Off || level < threshold) {
    return;
  }

  const std::shared_ptr<const LogSink> sink = current_sink();
  if (sink) {
    (*sink)(level, message);
  }
}

LogSink stderr_log_sink() {
  return [](LogLevel level, std::string_view message) {
    // One fwrite per line, so that lines from different threads do not interleave.
    std::string line = "[lepton] ";
    line += level_name(level);
    line += ": ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  };
}

}  // namespace lepton
