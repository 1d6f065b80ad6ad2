#pragma once
// CSV output of the CLI's commands. Not installed.

#include <string>

namespace lepton::cli {

/// Returns `text` as one CSV field (RFC 4180): quoted, with inner quotes doubled, when it contains a comma, a
/// quote or a line break, and unchanged otherwise.
inline std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;

  std::string quoted = "\"";
  for (const char c : text) {
    quoted += c;
    if (c == '"') quoted += '"';
  }
  return quoted + "\"";
}

}  // namespace lepton::cli
