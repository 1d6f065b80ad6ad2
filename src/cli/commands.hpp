#pragma once
// Subcommands of the `lepton` CLI that live in their own file.

#include <cstddef>
#include <string>
#include <vector>

namespace lepton::cli {

/// Options of `lepton explain`.
struct ExplainArguments {
  std::string model_path;
  std::string data_path;
  std::string output_dir;
  std::string rows;             ///< "0-9,15"; empty explains every row.
  std::string method = "exact"; ///< exact, kernel, permutation or gradient.
  /// Path of the coalition values. "fast" runs in float and reuses the first layer, as `lepton run` does for
  /// its report. "reference" evaluates every hybrid row in double, so it is reproducible to the last bit and
  /// much slower.
  std::string path = "fast";
  std::size_t samples = 0;      ///< Kernel coalitions or permutation pairs; 0 keeps the method's default.
  std::size_t top_k = 3;
  std::size_t threads = 1;
  unsigned long long seed = 0;
};

/// Explains rows of a CSV file with a model's stored background, writes attributions.json,
/// attributions.csv and top_k.txt into output_dir, and prints the top-k list. Returns the exit code.
int explain_command(const ExplainArguments& arguments);

/// Parses a row list such as "0-9,15" into sorted distinct row indices below `rows`.
/// Throws InvalidArgument naming the bad item.
std::vector<std::size_t> parse_row_list(const std::string& text, std::size_t rows);

}  // namespace lepton::cli
