#pragma once
/// Lepton's single log sink. The library is silent unless the host installs a sink or raises the level.

#include <functional>
#include <string_view>

namespace lepton {

enum class LogLevel { Debug = 0, Info = 1, Warning = 2, Error = 3, Off = 4 };

/// Receives every message at or above the current level. Called from the thread that logs.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

/// Replaces the process-wide sink. An empty function restores the default (silent) sink.
void set_log_sink(LogSink sink);

/// Sets the minimum level that reaches the sink. The default is LogLevel::Off.
void set_log_level(LogLevel level);

LogLevel log_level() noexcept;

/// Sends one message to the sink if `level` passes the current threshold.
void log(LogLevel level, std::string_view message);

/// A sink that writes "[lepton] level: message" lines to stderr, for command-line programs.
LogSink stderr_log_sink();

}  // namespace lepton
