#include "lepton/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/text_detail.hpp"

namespace lepton {

std::string to_string(Task task) {
  switch (task) {
    case Task::BinaryClassification: return "binary_classification";
    case Task::MulticlassClassification: return "multiclass_classification";
    case Task::Regression: return "regression";
  }
  throw InternalError(fmt::format("to_string: unknown Task value {}", static_cast<int>(task)));
}

std::string to_string(FeatureType type) {
  switch (type) {
    case FeatureType::Numeric: return "numeric";
    case FeatureType::Categorical: return "categorical";
    case FeatureType::Text: return "text";
    case FeatureType::Ignore: return "ignore";
  }
  throw InternalError(fmt::format("to_string: unknown FeatureType value {}", static_cast<int>(type)));
}

std::string to_string(ColumnKind kind) {
  switch (kind) {
    case ColumnKind::Numeric: return "numeric";
    case ColumnKind::Categorical: return "categorical";
    case ColumnKind::Text: return "text";
    case ColumnKind::IdLike: return "id_like";
    case ColumnKind::Constant: return "constant";
    case ColumnKind::Empty: return "empty";
  }
  throw InternalError(fmt::format("to_string: unknown ColumnKind value {}", static_cast<int>(kind)));
}

namespace {

// A non-numeric column is categorical while its distinct values stay at or below
// max(kMinCategoryLimit, kCategoryFraction * non-missing values). Twenty covers the small fixed
// vocabularies of typical tabular data even in small files. The 5 % share lets a large file keep
// many categories while a column where most rows differ is still treated as text.
constexpr std::size_t kMinCategoryLimit = 20;
constexpr double kCategoryFraction = 0.05;
constexpr std::size_t kTopCategories = 20;

// With fewer values, "all distinct" is no evidence that a column is an identifier.
constexpr std::size_t kMinIdLikeValues = 3;

/// Counts and parsed numbers from one pass over a column, from which the kind is chosen.
struct ColumnScan {
  std::size_t present = 0;  // non-missing values
  std::unordered_map<std::string_view, std::size_t> counts;
  std::vector<double> numbers;          // parsed values while every value so far is a number
  std::size_t non_numeric = 0;          // values that do not parse as numbers
  std::size_t first_non_numeric_row = 0;
  bool all_integers = true;
};

ColumnScan scan_column(const Table& table, std::size_t column) {
  ColumnScan scan;
  scan.numbers.reserve(table.rows());
  for (std::size_t row = 0; row < table.rows(); ++row) {
    if (table.is_missing(row, column)) {
      continue;
    }
    const std::string& text = table.cell(row, column);
    ++scan.present;
    ++scan.counts[text];

    const std::optional<double> value = parse_number(text);
    if (!value) {
      scan.first_non_numeric_row = scan.non_numeric == 0 ? row : scan.first_non_numeric_row;
      ++scan.non_numeric;
      continue;
    }
    scan.numbers.push_back(*value);
    scan.all_integers = scan.all_integers && std::floor(*value) == *value;
  }
  return scan;
}

void set_moments(ColumnProfile& profile, const std::vector<double>& values) {
  profile.min = *std::min_element(values.begin(), values.end());
  profile.max = *std::max_element(values.begin(), values.end());

  double sum = 0;
  for (double value : values) {
    sum += value;
  }
  profile.mean = sum / static_cast<double>(values.size());

  double squares = 0;
  for (double value : values) {
    squares += (value - profile.mean) * (value - profile.mean);
  }
  profile.std = std::sqrt(squares / static_cast<double>(values.size()));
}

bool is_consecutive_run(const ColumnProfile& profile, std::size_t distinct) {
  return profile.max - profile.min + 1 == static_cast<double>(distinct);
}

bool has_blank(const std::unordered_map<std::string_view, std::size_t>& counts) {
  for (const auto& [text, count] : counts) {
    if (text.find_first_of(" \t\r\n") != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

std::map<std::string, std::size_t> top_categories(const std::unordered_map<std::string_view, std::size_t>& counts) {
  std::vector<std::pair<std::string_view, std::size_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });

  std::map<std::string, std::size_t> top;
  for (std::size_t i = 0; i < sorted.size() && i < kTopCategories; ++i) {
    top.emplace(std::string(sorted[i].first), sorted[i].second);
  }
  return top;
}

// At most one value in this many may be text for a column to still count as numeric.
constexpr std::size_t kStrayTextRatio = 100;

bool is_mostly_numeric(const ColumnScan& scan) {
  return !scan.numbers.empty() && scan.non_numeric * kStrayTextRatio <= scan.present;
}

void classify_numeric(ColumnProfile& profile, const ColumnScan& scan) {
  set_moments(profile, scan.numbers);

  if (scan.all_integers && profile.distinct == scan.present && profile.distinct >= kMinIdLikeValues &&
      is_consecutive_run(profile, profile.distinct)) {
    profile.kind = ColumnKind::IdLike;
    profile.reason = fmt::format("all {} values are distinct integers that run without gaps from {} to {}",
                                 scan.present, profile.min, profile.max);
    return;
  }

  profile.kind = ColumnKind::Numeric;
  profile.reason = fmt::format("all {} non-missing values are numbers ({} distinct, from {} to {})",
                               scan.present, profile.distinct, profile.min, profile.max);
}

void classify_text(ColumnProfile& profile, const ColumnScan& scan, const Table& table, std::size_t column) {
  const std::string example = fmt::format("'{}' at {}", table.cell(scan.first_non_numeric_row, column),
                                          table.locate(scan.first_non_numeric_row, column));
  const std::string not_numbers =
      fmt::format("{} of {} non-missing values are not numbers (first: {})", scan.non_numeric, scan.present, example);

  if (profile.distinct == scan.present && profile.distinct >= kMinIdLikeValues && !has_blank(scan.counts)) {
    profile.kind = ColumnKind::IdLike;
    profile.reason = fmt::format("all {} values are distinct and contain no spaces; {}", scan.present, not_numbers);
    return;
  }

  const auto limit = std::max(kMinCategoryLimit,
                              static_cast<std::size_t>(kCategoryFraction * static_cast<double>(scan.present)));
  if (profile.distinct <= limit) {
    profile.kind = ColumnKind::Categorical;
    profile.top_categories = top_categories(scan.counts);
    profile.reason = fmt::format("{} distinct values, at most the categorical limit of {}; {}", profile.distinct,
                                 limit, not_numbers);
    return;
  }

  profile.kind = ColumnKind::Text;
  profile.reason = fmt::format("{} distinct values, above the categorical limit of {}; {}", profile.distinct, limit,
                               not_numbers);
}

ColumnProfile profile_column(const Table& table, std::size_t column) {
  const ColumnScan scan = scan_column(table, column);

  ColumnProfile profile;
  profile.name = table.column_names()[column];
  profile.missing = table.rows() - scan.present;
  profile.distinct = scan.counts.size();

  if (scan.present == 0) {
    profile.kind = ColumnKind::Empty;
    profile.reason = fmt::format("all {} values are missing", table.rows());
    return profile;
  }

  if (profile.distinct == 1) {
    if (scan.non_numeric == 0) {
      set_moments(profile, scan.numbers);
    }
    profile.kind = ColumnKind::Constant;
    profile.reason = fmt::format("all {} non-missing values are '{}'", scan.present, scan.counts.begin()->first);
    return profile;
  }

  if (scan.non_numeric == 0) {
    classify_numeric(profile, scan);
  } else if (is_mostly_numeric(scan)) {
    // A few stray texts in a numeric column are far more often typos than a change of type, so the
    // column stays numeric and preprocessing reports each stray value with its location.
    classify_numeric(profile, scan);
    profile.reason = fmt::format(
        "{} of {} non-missing values are numbers (from {} to {}), so the column is numeric; {} are not (first: '{}' "
        "at {}): correct them or use a missing-value marker",
        scan.numbers.size(), scan.present, profile.min, profile.max, scan.non_numeric,
        table.cell(scan.first_non_numeric_row, column), table.locate(scan.first_non_numeric_row, column));
  } else {
    classify_text(profile, scan, table, column);
  }
  return profile;
}

/// Sorts labels numerically when every label is a number ("2" before "10"), else by text.
/// Numerically equal labels such as "1" and "1.0" keep a stable order by text.
void sort_labels(std::vector<std::string>& labels) {
  std::vector<std::pair<double, std::string>> keyed;
  keyed.reserve(labels.size());
  for (const std::string& label : labels) {
    const std::optional<double> value = parse_number(label);
    if (!value) {
      std::sort(labels.begin(), labels.end());
      return;
    }
    keyed.emplace_back(*value, label);
  }

  std::sort(keyed.begin(), keyed.end());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    labels[i] = std::move(keyed[i].second);
  }
}

void profile_target(DataProfile& profile, const Table& table, std::size_t column) {
  std::unordered_map<std::string_view, std::size_t> counts;
  for (std::size_t row = 0; row < table.rows(); ++row) {
    if (!table.is_missing(row, column)) {
      ++counts[table.cell(row, column)];
    }
  }

  profile.classes.clear();
  for (const auto& [label, count] : counts) {
    profile.classes.emplace_back(label);
  }
  sort_labels(profile.classes);

  std::size_t labelled = 0;
  std::size_t smallest = std::numeric_limits<std::size_t>::max();
  profile.class_counts.clear();
  for (const std::string& label : profile.classes) {
    const std::size_t count = counts.at(label);
    profile.class_counts.push_back(count);
    labelled += count;
    smallest = std::min(smallest, count);
  }

  // Rows without a label cannot be trained on, so the fraction is of labelled rows.
  profile.minority_fraction = labelled == 0 ? 0.0 : static_cast<double>(smallest) / static_cast<double>(labelled);
}

}  // namespace

DataProfile profile_table(const Table& table, const std::string& target, Task task) {
  DataProfile profile;
  profile.rows = table.rows();
  profile.columns.reserve(table.columns());
  for (std::size_t column = 0; column < table.columns(); ++column) {
    profile.columns.push_back(profile_column(table, column));
  }

  if (target.empty()) {
    return profile;
  }
  const std::size_t target_column = table.column_index(target);
  profile.target = target;
  if (task != Task::Regression) {
    profile_target(profile, table, target_column);
  }
  return profile;
}

const ColumnProfile& DataProfile::column(const std::string& name) const {
  for (const ColumnProfile& profile : columns) {
    if (profile.name == name) {
      return profile;
    }
  }

  std::vector<std::string> names;
  for (const ColumnProfile& profile : columns) {
    names.push_back(profile.name);
  }
  const std::string suggestion = detail::closest_name(name, names);
  if (!suggestion.empty()) {
    throw InvalidArgument(fmt::format("column '{}' not found in the data profile; did you mean '{}'?", name,
                                      suggestion));
  }
  throw InvalidArgument(fmt::format("column '{}' not found in the data profile; available columns: {}", name,
                                    detail::quoted_list(names)));
}

nlohmann::json DataProfile::to_json() const {
  nlohmann::json columns_json = nlohmann::json::array();
  for (const ColumnProfile& column : columns) {
    nlohmann::json entry = {
        {"name", column.name},
        {"kind", to_string(column.kind)},
        {"missing", column.missing},
        {"distinct", column.distinct},
        {"reason", column.reason},
    };

    // Numeric and numeric ID-like columns carry moments. A text ID-like column has none, which
    // its min == max == 0 shows, because a numeric ID-like column spans at least three values.
    const bool has_moments = column.kind == ColumnKind::Numeric || (column.kind == ColumnKind::IdLike && column.max > column.min);
    if (has_moments) {
      entry["min"] = column.min;
      entry["max"] = column.max;
      entry["mean"] = column.mean;
      entry["std"] = column.std;
    }
    if (!column.top_categories.empty()) {
      entry["top_categories"] = column.top_categories;
    }
    columns_json.push_back(std::move(entry));
  }

  nlohmann::json json = {{"rows", rows}, {"columns", std::move(columns_json)}};
  if (!target.empty()) {
    json["target"] = target;
  }
  if (!classes.empty()) {
    json["classes"] = classes;
    json["class_counts"] = class_counts;
    json["minority_fraction"] = minority_fraction;
  }
  return json;
}

namespace {

/// splitmix64: a fixed sequence for a seed on every platform. std::shuffle and the standard distributions
/// are not specified to the bit, so their results differ between standard libraries.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  /// Uniform integer in [0, bound) without modulo bias: draws below 2^64 mod bound are rejected.
  std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t threshold = (0 - bound) % bound;
    while (true) {
      const std::uint64_t draw = next();
      if (draw >= threshold) {
        return draw % bound;
      }
    }
  }

 private:
  std::uint64_t state_;
};

void shuffle(std::vector<std::size_t>& items, SplitMix64& generator) {
  for (std::size_t i = items.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(generator.below(i));
    std::swap(items[i - 1], items[j]);
  }
}

void check_fractions(const SplitFractions& fractions) {
  const bool positive = std::isfinite(fractions.train) && std::isfinite(fractions.validation) &&
                        std::isfinite(fractions.test) && fractions.train > 0 && fractions.validation > 0 &&
                        fractions.test > 0;
  const double sum = fractions.train + fractions.validation + fractions.test;
  if (!positive || std::abs(sum - 1.0) > 1e-9) {
    throw InvalidArgument(fmt::format("split fractions train={}, validation={}, test={} are invalid: each must be "
                                      "greater than 0 and they must sum to 1 (sum is {:.10g})",
                                      fractions.train, fractions.validation, fractions.test, sum));
  }
}

struct PartSizes {
  std::size_t train = 0, validation = 0, test = 0;
};

// Rounds validation and test sizes to the nearest row and gives the rest to train, so the sizes add
// up exactly. Every part gets at least one row of a group with three or more rows.
PartSizes part_sizes(std::size_t rows, const SplitFractions& fractions) {
  const auto rounded = [rows](double fraction) {
    return static_cast<std::size_t>(std::llround(static_cast<double>(rows) * fraction));
  };

  PartSizes sizes;
  sizes.validation = std::max<std::size_t>(1, rounded(fractions.validation));
  sizes.test = std::max<std::size_t>(1, rounded(fractions.test));
  while (sizes.validation + sizes.test > rows - 1) {
    std::size_t& larger = sizes.validation >= sizes.test ? sizes.validation : sizes.test;
    --larger;
  }
  sizes.train = rows - sizes.validation - sizes.test;
  return sizes;
}

void cut_into(Split& split, const std::vector<std::size_t>& shuffled, const PartSizes& sizes) {
  const auto begin = shuffled.begin();
  const auto train_end = begin + static_cast<std::ptrdiff_t>(sizes.train);
  const auto validation_end = train_end + static_cast<std::ptrdiff_t>(sizes.validation);
  split.train.insert(split.train.end(), begin, train_end);
  split.validation.insert(split.validation.end(), train_end, validation_end);
  split.test.insert(split.test.end(), validation_end, shuffled.end());
}

void sort_parts(Split& split) {
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  std::sort(split.test.begin(), split.test.end());
}

}  // namespace

Split stratified_split(const std::vector<std::int64_t>& labels, const SplitFractions& fractions,
                       std::uint64_t seed) {
  check_fractions(fractions);

  // std::map orders the classes, so the generator visits them in the same order everywhere.
  std::map<std::int64_t, std::vector<std::size_t>> rows_by_class;
  for (std::size_t row = 0; row < labels.size(); ++row) {
    rows_by_class[labels[row]].push_back(row);
  }
  for (const auto& [label, rows] : rows_by_class) {
    if (rows.size() < 3) {
      throw InvalidArgument(fmt::format("class {} has {} row(s), but a stratified split needs at least 3 rows "
                                        "per class (one each for train, validation and test); add rows of "
                                        "class {} or merge it with another class",
                                        label, rows.size(), label));
    }
  }

  SplitMix64 generator(seed);
  Split split;
  for (auto& [label, rows] : rows_by_class) {
    shuffle(rows, generator);
    cut_into(split, rows, part_sizes(rows.size(), fractions));
  }
  sort_parts(split);
  return split;
}

Split random_split(std::size_t rows, const SplitFractions& fractions, std::uint64_t seed) {
  check_fractions(fractions);
  if (rows < 3) {
    throw InvalidArgument(fmt::format("random_split: {} row(s) cannot fill train, validation and test; pass at "
                                      "least 3 rows",
                                      rows));
  }

  std::vector<std::size_t> order(rows);
  for (std::size_t row = 0; row < rows; ++row) {
    order[row] = row;
  }
  SplitMix64 generator(seed);
  shuffle(order, generator);

  Split split;
  cut_into(split, order, part_sizes(rows, fractions));
  sort_parts(split);
  return split;
}

namespace {

void check_folds(std::size_t folds, std::size_t rows, const std::string& group) {
  if (folds < 2) {
    throw InvalidArgument(fmt::format("cross-validation needs at least 2 folds, got {}; pass folds >= 2", folds));
  }
  if (rows < folds) {
    throw InvalidArgument(fmt::format("{} has {} row(s), fewer than the {} folds, so some fold would have none of "
                                      "them; use at most {} folds or add rows",
                                      group, rows, folds, rows));
  }
}

// Deals the shuffled rows out to the folds in turn, continuing where the previous group stopped, so that
// fold sizes differ by at most one row overall.
void deal_out(std::vector<std::size_t>& fold_of_row, std::vector<std::size_t> rows, std::size_t folds,
              std::size_t& next_fold, SplitMix64& generator) {
  shuffle(rows, generator);
  for (std::size_t row : rows) {
    fold_of_row[row] = next_fold;
    next_fold = (next_fold + 1) % folds;
  }
}

}  // namespace

std::vector<std::size_t> stratified_folds(const std::vector<std::int64_t>& labels, std::size_t folds,
                                          std::uint64_t seed) {
  std::map<std::int64_t, std::vector<std::size_t>> rows_by_class;
  for (std::size_t row = 0; row < labels.size(); ++row) {
    rows_by_class[labels[row]].push_back(row);
  }
  for (const auto& [label, rows] : rows_by_class) {
    check_folds(folds, rows.size(), fmt::format("class {}", label));
  }

  SplitMix64 generator(seed);
  std::vector<std::size_t> fold_of_row(labels.size(), 0);
  std::size_t next_fold = 0;
  for (auto& [label, rows] : rows_by_class) {
    deal_out(fold_of_row, std::move(rows), folds, next_fold, generator);
  }
  return fold_of_row;
}

std::vector<std::size_t> random_folds(std::size_t rows, std::size_t folds, std::uint64_t seed) {
  check_folds(folds, rows, "the data");

  std::vector<std::size_t> order(rows);
  for (std::size_t row = 0; row < rows; ++row) {
    order[row] = row;
  }
  SplitMix64 generator(seed);
  std::vector<std::size_t> fold_of_row(rows, 0);
  std::size_t next_fold = 0;
  deal_out(fold_of_row, std::move(order), folds, next_fold, generator);
  return fold_of_row;
}

}  // namespace lepton
