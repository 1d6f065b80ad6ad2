#pragma once
// Checks of the input paths that `lepton` subcommands take from their options. Not installed.

#include <string>

namespace lepton::cli {

/// Checks that `path`, the value of command-line option `option` (such as "--data"), names an existing file,
/// so that the error names the option as well as the path. Throws FileNotFound when nothing exists at
/// `path` and IoError when it is a folder. Other failures, such as a missing read permission, are left to
/// the reader of the file, which reports them with the path.
void check_input_file(const std::string& option, const std::string& path);

}  // namespace lepton::cli
