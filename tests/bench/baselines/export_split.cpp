// Writes the stratified train/validation/test split that `lepton run` uses, so that the Python baselines
// train and test on exactly the same rows. The split repeats the pipeline's steps: class ids from
// TargetEncoding over every row, then stratified_split with fractions 0.6/0.2/0.2 and the given seed.
//
// Usage: export_split DATA OUT_DIR SEED [SEED...]
// Writes OUT_DIR/seed<SEED>_<part>.txt for part = train, validation, test: one 0-based data row index per
// line (row 0 is the first row after the header), in the order the split returns them.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "lepton/dataset.hpp"
#include "lepton/error.hpp"
#include "lepton/preprocess.hpp"
#include "lepton/table.hpp"

namespace {

constexpr const char* kTarget = "Machine failure";

std::uint64_t parse_seed(const std::string& text) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0') {
    throw lepton::InvalidArgument(
        fmt::format("export_split: seed '{}' is not a non-negative integer; pass seeds such as 0 1 2", text));
  }
  return value;
}

void write_rows(const std::filesystem::path& path, const std::vector<std::size_t>& rows) {
  std::ofstream out(path);
  for (const std::size_t row : rows) out << row << '\n';

  out.close();
  if (!out) {
    throw lepton::IoError(fmt::format("export_split: writing '{}' failed; check that the folder is writable",
                                      path.string()));
  }
}

std::size_t count_positives(const std::vector<std::int64_t>& labels, const std::vector<std::size_t>& rows) {
  std::size_t positives = 0;
  for (const std::size_t row : rows) positives += labels[row] == 1 ? 1 : 0;
  return positives;
}

int run(const std::string& data_path, const std::filesystem::path& out_dir,
        const std::vector<std::uint64_t>& seeds) {
  const lepton::Table table = lepton::read_csv(data_path);
  std::vector<std::size_t> all_rows(table.rows());
  for (std::size_t i = 0; i < all_rows.size(); ++i) all_rows[i] = i;

  const auto target =
      lepton::TargetEncoding::fit(table, kTarget, lepton::Task::BinaryClassification, all_rows);
  const std::vector<std::int64_t> labels = target.encode_labels(table, all_rows);

  std::filesystem::create_directories(out_dir);
  for (const std::uint64_t seed : seeds) {
    const lepton::Split split = lepton::stratified_split(labels, lepton::SplitFractions{}, seed);
    const std::pair<const char*, const std::vector<std::size_t>*> parts[] = {
        {"train", &split.train}, {"validation", &split.validation}, {"test", &split.test}};

    for (const auto& [name, rows] : parts) {
      write_rows(out_dir / fmt::format("seed{}_{}.txt", seed, name), *rows);
      std::printf("seed %llu %-10s rows %5zu positives %3zu\n", static_cast<unsigned long long>(seed), name,
                  rows->size(), count_positives(labels, *rows));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: export_split DATA OUT_DIR SEED [SEED...]\n");
    return 2;
  }

  try {
    std::vector<std::uint64_t> seeds;
    for (int i = 3; i < argc; ++i) seeds.push_back(parse_seed(argv[i]));
    return run(argv[1], argv[2], seeds);
  } catch (const lepton::Error& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& error) {
    std::fprintf(stderr, "export_split: %s; pass a writable OUT_DIR\n", error.what());
    return 1;
  }
}
