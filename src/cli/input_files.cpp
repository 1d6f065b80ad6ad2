#include "cli/input_files.hpp"

#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "lepton/error.hpp"

namespace lepton::cli {

void check_input_file(const std::string& option, const std::string& path) {
  std::error_code error;
  const std::filesystem::file_type type = std::filesystem::status(path, error).type();
  if (type == std::filesystem::file_type::not_found) {
    throw FileNotFound(fmt::format("{} '{}': file not found; check the path", option, path));
  }
  if (type == std::filesystem::file_type::directory) {
    throw IoError(fmt::format("{} '{}' is a folder; pass the path of a file", option, path));
  }
}

}  // namespace lepton::cli
