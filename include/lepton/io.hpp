#pragma once
/// File helpers shared by every writer: atomic writes and content hashes.

#include <string>

namespace lepton {

/// Reads a whole file. Throws FileNotFound or IoError naming the path.
std::string read_file(const std::string& path);

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then rename, so that readers
/// never see a partial file. Throws IoError naming the path; the temporary file is removed on failure.
void write_file_atomically(const std::string& path, const std::string& bytes);

/// Lower-case hex SHA-256 of `bytes` (libsodium).
std::string sha256_hex(const std::string& bytes);

}  // namespace lepton
