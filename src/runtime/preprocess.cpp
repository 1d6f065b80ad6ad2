#include "lepton/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/log.hpp"
#include "runtime/text_detail.hpp"

namespace lepton {
namespace {

// ---- shared checks

void check_rows(const Table& table, const std::vector<std::size_t>& rows, std::string_view operation) {
  for (std::size_t row : rows) {
    if (row >= table.rows()) {
      throw InvalidArgument(fmt::format("{}: row index {} is out of range for {} with {} rows", operation, row,
                                        table.source(), table.rows()));
    }
  }
}

double parse_cell(const Table& table, std::size_t row, std::size_t column, std::string_view role) {
  const std::optional<double> value = parse_number(table.cell(row, column));
  if (!value) {
    throw ParseError(fmt::format("{}: value '{}' in {} '{}' is not a finite number. Fix the value, mark it "
                                 "missing, or treat the column as categorical",
                                 table.locate(row, column), table.cell(row, column), role,
                                 table.column_names()[column]));
  }
  return *value;
}

/// Population standard deviation (ddof = 0), or 1 where it is 0 or not finite, so that dividing by it
/// is always safe and a constant column encodes as 0.
double safe_scale(const std::vector<double>& values, double mean) {
  double squares = 0;
  for (double value : values) {
    squares += (value - mean) * (value - mean);
  }
  const double scale = std::sqrt(squares / static_cast<double>(values.size()));
  return scale > 0 && std::isfinite(scale) ? scale : 1.0;
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (double value : values) {
    sum += value;
  }
  return sum / static_cast<double>(values.size());
}

double median_of(std::vector<double> values) {
  const std::size_t middle = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle), values.end());
  const double upper = values[middle];
  if (values.size() % 2 == 1) {
    return upper;
  }
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle));
  return lower + (upper - lower) / 2;
}

std::string missing_column_message(const Table& table, const std::string& name,
                                   const std::vector<std::string>& expected) {
  const std::string suggestion = detail::closest_name(name, table.column_names());
  const std::string hint = suggestion.empty() ? "" : fmt::format(" (did you mean '{}'?)", suggestion);
  return fmt::format("column '{}' not found in {}{}; the preprocessor expects the columns {}", name,
                     table.source(), hint, detail::quoted_list(expected));
}

// ---- fitting

// Adds the log column to a fitted numeric feature; `values` are its training values after imputation.
void fit_log_column(FeatureTransform& transform, std::vector<double> values, const std::string& source) {
  const double smallest = *std::min_element(values.begin(), values.end());
  if (smallest < 0) {
    throw InvalidArgument(fmt::format("numeric feature '{}' of {} has the training value {}, below 0; a log column "
                                      "needs values of at least 0, so turn log_column off for this feature",
                                      transform.column, source, smallest));
  }
  transform.log_column = true;
  transform.log_shift = kLogShiftFraction * transform.scale;
  transform.width = 2;
  for (double& value : values) value = std::log(value + transform.log_shift);
  transform.log_mean = mean_of(values);
  transform.log_scale = safe_scale(values, transform.log_mean);
}

FeatureTransform fit_numeric(const Table& table, std::size_t column, const std::vector<std::size_t>& rows,
                             bool log_column) {
  FeatureTransform transform;
  transform.column = table.column_names()[column];
  transform.type = FeatureType::Numeric;

  std::vector<double> values;
  values.reserve(rows.size());
  std::size_t missing = 0;
  for (std::size_t row : rows) {
    if (table.is_missing(row, column)) {
      ++missing;
      continue;
    }
    values.push_back(parse_cell(table, row, column, "numeric feature"));
  }
  if (values.empty()) {
    throw InvalidArgument(fmt::format("numeric feature '{}' has no value in the {} training rows of {}; drop the "
                                      "feature or mark it ignore",
                                      transform.column, rows.size(), table.source()));
  }
  transform.fill = median_of(values);

  // Missing values count as the median, as in an imputer followed by a scaler (sklearn's
  // SimpleImputer(strategy="median") then StandardScaler).
  values.insert(values.end(), missing, transform.fill);
  transform.mean = mean_of(values);
  transform.scale = safe_scale(values, transform.mean);
  if (log_column) fit_log_column(transform, std::move(values), table.source());
  return transform;
}

FeatureTransform fit_categorical(const Table& table, std::size_t column, const std::vector<std::size_t>& rows) {
  FeatureTransform transform;
  transform.column = table.column_names()[column];
  transform.type = FeatureType::Categorical;

  // std::map keeps the categories sorted by text (bytewise).
  std::map<std::string, std::size_t> counts;
  for (std::size_t row : rows) {
    if (!table.is_missing(row, column)) {
      ++counts[table.cell(row, column)];
    }
  }
  if (counts.empty()) {
    throw InvalidArgument(fmt::format("categorical feature '{}' has no value in the {} training rows of {}; drop "
                                      "the feature or mark it ignore",
                                      transform.column, rows.size(), table.source()));
  }

  std::size_t best_count = 0;
  for (const auto& [category, count] : counts) {
    transform.categories.push_back(category);
    // Strictly greater keeps the first, i.e. smallest, text among equally frequent categories.
    if (count > best_count) {
      best_count = count;
      transform.fill_category = category;
    }
  }
  transform.width = transform.categories.size();
  return transform;
}

FeatureTransform fit_text(const Table& table, std::size_t column, const std::vector<std::size_t>& rows) {
  FeatureTransform transform;
  transform.column = table.column_names()[column];
  transform.type = FeatureType::Text;
  transform.width = kTextBuckets;

  // Per-bucket mean and standard deviation of the token shares over the training rows; a missing cell
  // counts as a text without tokens.
  std::vector<double> sum(kTextBuckets, 0.0), squares(kTextBuckets, 0.0), shares(kTextBuckets);
  for (std::size_t row : rows) {
    const std::string_view text = table.is_missing(row, column) ? std::string_view() : table.cell(row, column);
    text_token_shares(text, kTextBuckets, shares.data());
    for (std::size_t b = 0; b < kTextBuckets; ++b) {
      sum[b] += shares[b];
      squares[b] += shares[b] * shares[b];
    }
  }

  const double count = std::max<double>(1.0, static_cast<double>(rows.size()));
  for (std::size_t b = 0; b < kTextBuckets; ++b) {
    const double mean = sum[b] / count;
    const double variance = std::max(0.0, squares[b] / count - mean * mean);
    transform.bucket_mean.push_back(mean);
    // A bucket that no training token reaches is constant; scale 1 keeps its encoding finite.
    transform.bucket_scale.push_back(variance > 1e-24 ? std::sqrt(variance) : 1.0);
  }
  return transform;
}

void check_unique_features(const std::vector<FeatureSpec>& features) {
  std::unordered_set<std::string_view> seen;
  for (const FeatureSpec& feature : features) {
    if (!seen.insert(feature.column).second) {
      throw InvalidArgument(fmt::format("feature '{}' is listed twice; list each column once", feature.column));
    }
  }
}

// ---- encoding

/// A fitted feature bound to a column index of one table, so that the row loop does no name lookups.
struct BoundFeature {
  const FeatureTransform* transform = nullptr;
  std::size_t column = 0;
  std::size_t fill_index = 0;       // categorical: index of fill_category in categories
  std::size_t unseen = 0;           // categorical: values not seen in training, this call
  std::size_t first_unseen_row = 0;
};

std::size_t category_index(const std::vector<std::string>& categories, const std::string& text) {
  const auto found = std::lower_bound(categories.begin(), categories.end(), text);
  if (found == categories.end() || *found != text) {
    return categories.size();
  }
  return static_cast<std::size_t>(found - categories.begin());
}

std::vector<BoundFeature> bind_features(const std::vector<FeatureTransform>& features, const Table& table) {
  std::vector<BoundFeature> bound;
  bound.reserve(features.size());
  for (const FeatureTransform& feature : features) {
    const std::optional<std::size_t> column = table.find_column(feature.column);
    if (!column) {
      std::vector<std::string> expected;
      for (const FeatureTransform& other : features) {
        expected.push_back(other.column);
      }
      throw InvalidArgument(missing_column_message(table, feature.column, expected));
    }

    BoundFeature entry;
    entry.transform = &feature;
    entry.column = *column;
    if (feature.type == FeatureType::Categorical) {
      entry.fill_index = category_index(feature.categories, feature.fill_category);
    }
    bound.push_back(entry);
  }
  return bound;
}

void encode_numeric(const Table& table, std::size_t row, const BoundFeature& feature, float* out) {
  const FeatureTransform& transform = *feature.transform;
  // A missing value is imputed with the training median.
  const double value = table.is_missing(row, feature.column)
                           ? transform.fill
                           : parse_cell(table, row, feature.column, "numeric feature");
  out[transform.offset] = static_cast<float>((value - transform.mean) / transform.scale);
  if (transform.log_column) out[transform.offset + 1] = static_cast<float>(transform.log_input(value));
}

void encode_categorical(const Table& table, std::size_t row, BoundFeature& feature, float* out) {
  const FeatureTransform& transform = *feature.transform;
  std::size_t index = feature.fill_index;
  if (!table.is_missing(row, feature.column)) {
    index = category_index(transform.categories, table.cell(row, feature.column));
  }

  if (index == transform.categories.size()) {
    feature.first_unseen_row = feature.unseen == 0 ? row : feature.first_unseen_row;
    ++feature.unseen;
    return;
  }
  out[transform.offset + index] = 1.0f;
}

void encode_text(const Table& table, std::size_t row, const BoundFeature& feature, float* out) {
  const std::string_view text =
      table.is_missing(row, feature.column) ? std::string_view() : table.cell(row, feature.column);
  detail::encode_text_cell(*feature.transform, text, out);
}

void warn_unseen(const Table& table, const std::vector<BoundFeature>& bound) {
  std::string details;
  for (const BoundFeature& feature : bound) {
    if (feature.unseen == 0) {
      continue;
    }
    details += fmt::format("{}'{}': {} value(s), first '{}' at {}", details.empty() ? "" : "; ",
                           feature.transform->column, feature.unseen,
                           table.cell(feature.first_unseen_row, feature.column),
                           table.locate(feature.first_unseen_row, feature.column));
  }
  if (!details.empty()) {
    log(LogLevel::Warning,
        fmt::format("categories not seen in training encode as all zeros in {}: {}", table.source(), details));
  }
}

// ---- JSON

std::string at(const std::string& path, std::string_view key) { return fmt::format("{}.{}", path, key); }

[[noreturn]] void fail_json(const std::string& path, std::string_view expected, const nlohmann::json& got) {
  throw ParseError(fmt::format("{}: expected {}, got {}", path, expected, got.dump()));
}

[[noreturn]] void fail_missing_key(const std::string& path, std::string_view expected) {
  throw ParseError(fmt::format("{}: missing key; expected {}", path, expected));
}

const nlohmann::json& require(const nlohmann::json& object, const std::string& path, std::string_view key,
                              std::string_view expected) {
  const auto found = object.find(key);
  if (found == object.end()) {
    fail_missing_key(at(path, key), expected);
  }
  return *found;
}

void check_object(const nlohmann::json& value, const std::string& path, const std::vector<std::string_view>& keys) {
  if (!value.is_object()) {
    fail_json(path, "an object", value);
  }
  for (const auto& [key, item] : value.items()) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      std::vector<std::string> allowed(keys.begin(), keys.end());
      throw ParseError(fmt::format("{}: unknown key; expected one of {}", at(path, key), detail::quoted_list(allowed)));
    }
  }
}

std::string read_string(const nlohmann::json& object, const std::string& path, std::string_view key) {
  const nlohmann::json& value = require(object, path, key, "a non-empty string");
  if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
    fail_json(at(path, key), "a non-empty string", value);
  }
  return value.get<std::string>();
}

double read_finite(const nlohmann::json& object, const std::string& path, std::string_view key) {
  const nlohmann::json& value = require(object, path, key, "a finite number");
  if (!value.is_number() || !std::isfinite(value.get<double>())) {
    fail_json(at(path, key), "a finite number", value);
  }
  return value.get<double>();
}

double read_positive(const nlohmann::json& object, const std::string& path, std::string_view key) {
  const nlohmann::json& value = require(object, path, key, "a positive finite number");
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() <= 0) {
    fail_json(at(path, key), "a positive finite number", value);
  }
  return value.get<double>();
}

std::size_t read_count(const nlohmann::json& object, const std::string& path, std::string_view key) {
  const nlohmann::json& value = require(object, path, key, "a non-negative integer");
  // A parsed document stores non-negative integers as unsigned, a built one may store them as signed.
  const bool non_negative = value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0);
  if (!non_negative) {
    fail_json(at(path, key), "a non-negative integer", value);
  }
  return value.get<std::size_t>();
}

/// Reads an array of unique strings. When `sorted` is set, they must be in ascending byte order,
/// which the categorical encoder's binary search relies on.
std::vector<std::string> read_labels(const nlohmann::json& object, const std::string& path, std::string_view key,
                                     bool sorted) {
  const std::string_view expected = sorted ? "an array of unique strings in ascending order" : "an array of unique strings";
  const nlohmann::json& value = require(object, path, key, expected);
  if (!value.is_array() || value.empty()) {
    fail_json(at(path, key), fmt::format("a non-empty {}", expected.substr(3)), value);
  }

  std::vector<std::string> labels;
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string item_path = fmt::format("{}[{}]", at(path, key), i);
    if (!value[i].is_string()) {
      fail_json(item_path, "a string", value[i]);
    }
    const std::string& label = value[i].get_ref<const std::string&>();
    if (!seen.insert(label).second) {
      fail_json(item_path, "a label that is not repeated", value[i]);
    }
    if (sorted && !labels.empty() && !(labels.back() < label)) {
      fail_json(item_path, fmt::format("a string after '{}' in ascending byte order", labels.back()), value[i]);
    }
    labels.push_back(label);
  }
  return labels;
}

// One statistic per text bucket: kTextBuckets finite numbers, positive ones for scales.
std::vector<double> read_bucket_statistics(const nlohmann::json& value, const std::string& path, const char* key,
                                           bool positive) {
  const nlohmann::json& list = require(value, path, key, fmt::format("an array of {} numbers", kTextBuckets));
  if (!list.is_array() || list.size() != kTextBuckets) {
    fail_json(at(path, key), fmt::format("an array of {} numbers, one per text bucket", kTextBuckets), list);
  }
  std::vector<double> numbers;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const bool ok = list[i].is_number() && std::isfinite(list[i].get<double>()) &&
                    (!positive || list[i].get<double>() > 0);
    if (!ok) {
      fail_json(fmt::format("{}[{}]", at(path, key), i), positive ? "a finite number > 0" : "a finite number",
                list[i]);
    }
    numbers.push_back(list[i].get<double>());
  }
  return numbers;
}

FeatureTransform read_feature(const nlohmann::json& value, const std::string& path, std::size_t offset) {
  FeatureTransform feature;
  if (!value.is_object()) {
    fail_json(path, "an object", value);
  }
  feature.column = read_string(value, path, "column");

  const std::string type = read_string(value, path, "type");
  if (type == "numeric") {
    check_object(value, path, {"column", "type", "fill", "mean", "scale", "log", "offset", "width"});
    feature.type = FeatureType::Numeric;
    feature.fill = read_finite(value, path, "fill");
    feature.mean = read_finite(value, path, "mean");
    feature.scale = read_positive(value, path, "scale");
    feature.width = 1;
    if (value.contains("log")) {
      const nlohmann::json& log = value["log"];
      const std::string log_path = at(path, "log");
      check_object(log, log_path, {"shift", "mean", "scale"});
      feature.log_column = true;
      feature.log_shift = read_positive(log, log_path, "shift");
      feature.log_mean = read_finite(log, log_path, "mean");
      feature.log_scale = read_positive(log, log_path, "scale");
      feature.width = 2;
    }
  } else if (type == "categorical") {
    check_object(value, path, {"column", "type", "categories", "fill_category", "offset", "width"});
    feature.type = FeatureType::Categorical;
    feature.categories = read_labels(value, path, "categories", true);
    feature.fill_category = read_string(value, path, "fill_category");
    if (category_index(feature.categories, feature.fill_category) == feature.categories.size()) {
      fail_json(at(path, "fill_category"), "one of the categories", value["fill_category"]);
    }
    feature.width = feature.categories.size();
  } else if (type == "text") {
    check_object(value, path, {"column", "type", "bucket_mean", "bucket_scale", "offset", "width"});
    feature.type = FeatureType::Text;
    feature.bucket_mean = read_bucket_statistics(value, path, "bucket_mean", false);
    feature.bucket_scale = read_bucket_statistics(value, path, "bucket_scale", true);
    feature.width = kTextBuckets;
  } else {
    fail_json(at(path, "type"), "\"numeric\", \"categorical\" or \"text\"", value["type"]);
  }

  feature.offset = offset;
  if (read_count(value, path, "offset") != offset) {
    fail_json(at(path, "offset"), fmt::format("{}, the sum of the widths before it", offset), value["offset"]);
  }
  if (read_count(value, path, "width") != feature.width) {
    fail_json(at(path, "width"), fmt::format("{} for this feature", feature.width), value["width"]);
  }
  return feature;
}

Task read_task(const nlohmann::json& object, const std::string& path) {
  const std::string name = read_string(object, path, "task");
  for (Task task : {Task::BinaryClassification, Task::MulticlassClassification, Task::Regression}) {
    if (to_string(task) == name) {
      return task;
    }
  }
  fail_json(at(path, "task"), R"("binary_classification", "multiclass_classification" or "regression")",
            object["task"]);
}

// ---- target

void check_class_count(const TargetEncoding& encoding, const Table& table, std::size_t rows) {
  const std::size_t count = encoding.classes.size();
  if (count < 2) {
    throw InvalidArgument(fmt::format("target '{}' has only one class ('{}') in {} training rows of {}; a "
                                      "classifier needs at least two",
                                      encoding.column, encoding.classes.front(), rows, table.source()));
  }
  if (encoding.task == Task::BinaryClassification && count > 2) {
    throw InvalidArgument(fmt::format("target '{}' has {} classes ({}) in the training rows of {}, but binary "
                                      "classification needs exactly two; use multiclass_classification",
                                      encoding.column, count, detail::quoted_list(encoding.classes), table.source()));
  }
  if (encoding.task == Task::MulticlassClassification && count < 3) {
    throw InvalidArgument(fmt::format("target '{}' has 2 classes ({}) in the training rows of {}, but multiclass "
                                      "classification needs at least three; use binary_classification",
                                      encoding.column, detail::quoted_list(encoding.classes), table.source()));
  }
}

[[noreturn]] void fail_missing_label(const Table& table, std::size_t row, std::size_t column) {
  throw ParseError(fmt::format("{}: target '{}' is missing in this row. Fill in the label or drop the row",
                               table.locate(row, column), table.column_names()[column]));
}

/// Sorts labels numerically when all are numbers ("2" before "10"), else by text, as profile_table does.
void sort_class_labels(std::vector<std::string>& labels) {
  std::vector<std::pair<double, std::string>> keyed;
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

}  // namespace

// ---- Preprocessor

double FeatureTransform::log_input(double value) const {
  return (std::log(std::max(value, 0.0) + log_shift) - log_mean) / log_scale;
}

void text_token_shares(std::string_view text, std::size_t buckets, double* shares) {
  std::fill(shares, shares + buckets, 0.0);
  if (buckets == 0) return;

  // A token is a maximal run of ASCII letters and digits, or of non-ASCII bytes (so a UTF-8 word stays
  // whole). ASCII letters are lowercased before hashing.
  // ASCII tests written out, because std::isalnum and std::tolower depend on the host's locale.
  auto is_token_byte = [](unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  std::size_t tokens = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_token_byte(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    std::uint64_t hash = 14695981039346656037ULL;  // 64-bit FNV-1a offset basis
    for (; i < text.size() && is_token_byte(static_cast<unsigned char>(text[i])); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      hash ^= (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c - 'A' + 'a') : c;
      hash *= 1099511628211ULL;  // 64-bit FNV prime
    }
    shares[hash % buckets] += 1.0;
    ++tokens;
  }

  if (tokens == 0) return;
  for (std::size_t b = 0; b < buckets; ++b) shares[b] /= static_cast<double>(tokens);
}

void detail::encode_text_cell(const FeatureTransform& feature, std::string_view text, float* encoded) {
  double shares[kTextBuckets];
  text_token_shares(text, feature.width, shares);
  for (std::size_t b = 0; b < feature.width; ++b) {
    encoded[feature.offset + b] = static_cast<float>((shares[b] - feature.bucket_mean[b]) / feature.bucket_scale[b]);
  }
}

Preprocessor Preprocessor::fit(const Table& table, const std::vector<FeatureSpec>& features,
                               const std::vector<std::size_t>& rows) {
  if (rows.empty()) {
    throw InvalidArgument(fmt::format("Preprocessor::fit: no training rows given for {}; pass at least one row index",
                                      table.source()));
  }
  check_rows(table, rows, "Preprocessor::fit");
  check_unique_features(features);

  Preprocessor preprocessor;
  for (const FeatureSpec& spec : features) {
    const std::size_t column = table.column_index(spec.column);
    if (spec.type == FeatureType::Ignore) {
      continue;
    }
    if (spec.log_column && spec.type != FeatureType::Numeric) {
      throw InvalidArgument(fmt::format("feature '{}' is {} but asks for a log column; only numeric features "
                                        "have one, so turn log_column off",
                                        spec.column, to_string(spec.type)));
    }
    FeatureTransform transform = spec.type == FeatureType::Numeric ? fit_numeric(table, column, rows, spec.log_column)
                                 : spec.type == FeatureType::Text  ? fit_text(table, column, rows)
                                                                   : fit_categorical(table, column, rows);
    transform.offset = preprocessor.width_;
    preprocessor.width_ += transform.width;
    preprocessor.features_.push_back(std::move(transform));
  }
  return preprocessor;
}

Matrix Preprocessor::transform(const Table& table) const {
  std::vector<std::size_t> rows(table.rows());
  for (std::size_t row = 0; row < rows.size(); ++row) {
    rows[row] = row;
  }
  return transform(table, rows);
}

Matrix Preprocessor::transform(const Table& table, const std::vector<std::size_t>& rows) const {
  check_rows(table, rows, "Preprocessor::transform");
  std::vector<BoundFeature> bound = bind_features(features_, table);

  Matrix encoded(rows.size(), width_, 0.0f);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    float* out = encoded.row(i);
    for (BoundFeature& feature : bound) {
      if (feature.transform->type == FeatureType::Numeric) {
        encode_numeric(table, rows[i], feature, out);
      } else if (feature.transform->type == FeatureType::Text) {
        encode_text(table, rows[i], feature, out);
      } else {
        encode_categorical(table, rows[i], feature, out);
      }
    }
  }

  warn_unseen(table, bound);
  return encoded;
}

std::vector<std::string> Preprocessor::encoded_names() const {
  std::vector<std::string> names;
  names.reserve(width_);
  for (const FeatureTransform& feature : features_) {
    if (feature.type == FeatureType::Numeric) {
      names.push_back(feature.column);
      if (feature.log_column) names.push_back(fmt::format("log({})", feature.column));
      continue;
    }
    if (feature.type == FeatureType::Text) {
      for (std::size_t b = 0; b < feature.width; ++b) names.push_back(fmt::format("{}#token{}", feature.column, b));
      continue;
    }
    for (const std::string& category : feature.categories) {
      names.push_back(feature.column + "=" + category);
    }
  }
  return names;
}

nlohmann::json Preprocessor::to_json() const {
  nlohmann::json features = nlohmann::json::array();
  for (const FeatureTransform& feature : features_) {
    nlohmann::json entry = {{"column", feature.column}, {"type", to_string(feature.type)}};
    if (feature.type == FeatureType::Numeric) {
      entry["fill"] = feature.fill;
      entry["mean"] = feature.mean;
      entry["scale"] = feature.scale;
      if (feature.log_column) {
        entry["log"] = {{"shift", feature.log_shift}, {"mean", feature.log_mean}, {"scale", feature.log_scale}};
      }
    } else if (feature.type == FeatureType::Text) {
      entry["bucket_mean"] = feature.bucket_mean;
      entry["bucket_scale"] = feature.bucket_scale;
    } else {
      entry["categories"] = feature.categories;
      entry["fill_category"] = feature.fill_category;
    }
    entry["offset"] = feature.offset;
    entry["width"] = feature.width;
    features.push_back(std::move(entry));
  }
  return {{"features", std::move(features)}, {"encoded_width", width_}};
}

Preprocessor Preprocessor::from_json(const nlohmann::json& state, const std::string& json_path) {
  check_object(state, json_path, {"features", "encoded_width"});
  const nlohmann::json& features = require(state, json_path, "features", "an array of feature objects");
  if (!features.is_array()) {
    fail_json(at(json_path, "features"), "an array of feature objects", features);
  }

  Preprocessor preprocessor;
  std::unordered_set<std::string> columns;
  for (std::size_t i = 0; i < features.size(); ++i) {
    const std::string path = fmt::format("{}.features[{}]", json_path, i);
    FeatureTransform feature = read_feature(features[i], path, preprocessor.width_);
    if (!columns.insert(feature.column).second) {
      fail_json(at(path, "column"), "a column not used by an earlier feature", features[i]["column"]);
    }
    preprocessor.width_ += feature.width;
    preprocessor.features_.push_back(std::move(feature));
  }

  if (read_count(state, json_path, "encoded_width") != preprocessor.width_) {
    fail_json(at(json_path, "encoded_width"), fmt::format("{}, the sum of the feature widths", preprocessor.width_),
              state["encoded_width"]);
  }
  return preprocessor;
}

// ---- TargetEncoding

TargetEncoding TargetEncoding::fit(const Table& table, const std::string& column, Task task,
                                   const std::vector<std::size_t>& rows) {
  if (rows.empty()) {
    throw InvalidArgument(fmt::format("TargetEncoding::fit: no training rows given for target '{}' in {}", column,
                                      table.source()));
  }
  check_rows(table, rows, "TargetEncoding::fit");
  const std::size_t index = table.column_index(column);

  TargetEncoding encoding;
  encoding.task = task;
  encoding.column = column;

  if (task == Task::Regression) {
    const std::vector<double> values = encoding.encode_values(table, rows);
    encoding.mean = mean_of(values);
    encoding.scale = safe_scale(values, encoding.mean);
    return encoding;
  }

  std::unordered_set<std::string> labels;
  for (std::size_t row : rows) {
    if (table.is_missing(row, index)) {
      fail_missing_label(table, row, index);
    }
    labels.insert(table.cell(row, index));
  }
  encoding.classes.assign(labels.begin(), labels.end());
  sort_class_labels(encoding.classes);
  check_class_count(encoding, table, rows.size());
  return encoding;
}

std::vector<std::int64_t> TargetEncoding::encode_labels(const Table& table, const std::vector<std::size_t>& rows) const {
  if (task == Task::Regression) {
    throw InvalidArgument(fmt::format("encode_labels: target '{}' is a regression target; use encode_values", column));
  }
  check_rows(table, rows, "TargetEncoding::encode_labels");
  const std::size_t index = table.column_index(column);

  std::unordered_map<std::string_view, std::int64_t> ids;
  for (std::size_t i = 0; i < classes.size(); ++i) {
    ids.emplace(classes[i], static_cast<std::int64_t>(i));
  }

  std::vector<std::int64_t> labels;
  labels.reserve(rows.size());
  for (std::size_t row : rows) {
    if (table.is_missing(row, index)) {
      fail_missing_label(table, row, index);
    }
    const auto found = ids.find(table.cell(row, index));
    if (found == ids.end()) {
      throw ParseError(fmt::format("{}: label '{}' of target '{}' is not one of the trained classes {}. Fix the "
                                   "label or retrain with it",
                                   table.locate(row, index), table.cell(row, index), column,
                                   detail::quoted_list(classes)));
    }
    labels.push_back(found->second);
  }
  return labels;
}

std::vector<double> TargetEncoding::encode_values(const Table& table, const std::vector<std::size_t>& rows) const {
  if (task != Task::Regression) {
    throw InvalidArgument(fmt::format("encode_values: target '{}' is a classification target; use encode_labels",
                                      column));
  }
  check_rows(table, rows, "TargetEncoding::encode_values");
  const std::size_t index = table.column_index(column);

  std::vector<double> values;
  values.reserve(rows.size());
  for (std::size_t row : rows) {
    if (table.is_missing(row, index)) {
      fail_missing_label(table, row, index);
    }
    values.push_back(parse_cell(table, row, index, "regression target"));
  }
  return values;
}

nlohmann::json TargetEncoding::to_json() const {
  nlohmann::json json = {{"task", to_string(task)}, {"column", column}};
  if (task == Task::Regression) {
    json["mean"] = mean;
    json["scale"] = scale;
  } else {
    json["classes"] = classes;
  }
  return json;
}

TargetEncoding TargetEncoding::from_json(const nlohmann::json& state, const std::string& json_path) {
  if (!state.is_object()) {
    fail_json(json_path, "an object", state);
  }

  TargetEncoding encoding;
  encoding.task = read_task(state, json_path);
  if (encoding.task == Task::Regression) {
    check_object(state, json_path, {"task", "column", "mean", "scale"});
    encoding.column = read_string(state, json_path, "column");
    encoding.mean = read_finite(state, json_path, "mean");
    encoding.scale = read_positive(state, json_path, "scale");
    return encoding;
  }

  check_object(state, json_path, {"task", "column", "classes"});
  encoding.column = read_string(state, json_path, "column");
  encoding.classes = read_labels(state, json_path, "classes", false);
  const std::size_t count = encoding.classes.size();
  if (encoding.task == Task::BinaryClassification && count != 2) {
    fail_json(at(json_path, "classes"), "exactly 2 classes for binary_classification", state["classes"]);
  }
  if (encoding.task == Task::MulticlassClassification && count < 3) {
    fail_json(at(json_path, "classes"), "at least 3 classes for multiclass_classification", state["classes"]);
  }
  return encoding;
}

}  // namespace lepton
