// Feature groups and explanation backgrounds: sampling, weighted k-means summary and JSON.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/explain.hpp"
#include "runtime/explain_detail.hpp"

namespace lepton {

namespace {

constexpr const char* kBackgroundFormat = "lepton-explanation-background/1";

double squared_distance(const double* a, const double* b, std::size_t width) {
  double total = 0.0;
  for (std::size_t c = 0; c < width; ++c) {
    const double difference = a[c] - b[c];
    total += difference * difference;
  }
  return total;
}

std::size_t nearest_centre(const DoubleMatrix& centres, const double* point) {
  std::size_t best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  for (std::size_t c = 0; c < centres.rows; ++c) {
    const double distance = squared_distance(centres.row(c), point, centres.cols);
    if (distance < best_distance) {
      best_distance = distance;
      best = c;
    }
  }
  return best;
}

// k-means++: the first centre uniformly, each next one with probability proportional to the squared
// distance to the nearest centre chosen so far.
DoubleMatrix kmeans_plus_plus(const DoubleMatrix& data, std::size_t clusters, detail::RowRandom& random) {
  DoubleMatrix centres(clusters, data.cols);
  std::vector<double> nearest(data.rows, std::numeric_limits<double>::infinity());

  std::size_t chosen = random.below(data.rows);
  for (std::size_t c = 0; c < clusters; ++c) {
    std::copy(data.row(chosen), data.row(chosen) + data.cols, centres.row(c));
    double total = 0.0;
    for (std::size_t i = 0; i < data.rows; ++i) {
      nearest[i] = std::min(nearest[i], squared_distance(data.row(i), centres.row(c), data.cols));
      total += nearest[i];
    }
    if (c + 1 == clusters) break;

    if (total <= 0.0) {
      chosen = random.below(data.rows);  // Every point is already a centre: duplicates become empty clusters.
      continue;
    }
    const double target = random.unit() * total;
    double cumulative = 0.0;
    chosen = data.rows - 1;
    for (std::size_t i = 0; i < data.rows; ++i) {
      cumulative += nearest[i];
      if (cumulative > target) {
        chosen = i;
        break;
      }
    }
  }
  return centres;
}

// Lloyd iterations until no assignment changes. An empty cluster keeps its previous centre.
std::vector<std::size_t> lloyd(const DoubleMatrix& data, DoubleMatrix& centres, std::size_t iterations) {
  std::vector<std::size_t> assignment(data.rows, centres.rows);
  for (std::size_t iteration = 0; iteration < iterations; ++iteration) {
    bool changed = false;
    for (std::size_t i = 0; i < data.rows; ++i) {
      const std::size_t best = nearest_centre(centres, data.row(i));
      changed = changed || best != assignment[i];
      assignment[i] = best;
    }
    if (!changed) break;

    DoubleMatrix sums(centres.rows, centres.cols);
    std::vector<std::size_t> counts(centres.rows, 0);
    for (std::size_t i = 0; i < data.rows; ++i) {
      ++counts[assignment[i]];
      for (std::size_t c = 0; c < data.cols; ++c) sums(assignment[i], c) += data(i, c);
    }
    for (std::size_t k = 0; k < centres.rows; ++k) {
      if (counts[k] == 0) continue;
      for (std::size_t c = 0; c < data.cols; ++c) centres(k, c) = sums(k, c) / static_cast<double>(counts[k]);
    }
  }
  return assignment;
}

// The category of a one-hot block: the column holding the largest value above 0.5, or `width` for an
// all-zero block (an unseen category).
std::size_t category_of(const double* row, const FeatureGroup& group) {
  std::size_t best = group.columns.size();
  double best_value = 0.5;
  for (std::size_t j = 0; j < group.columns.size(); ++j) {
    if (row[group.columns[j]] > best_value) {
      best_value = row[group.columns[j]];
      best = j;
    }
  }
  return best;
}

// Sets each one-hot block of each centre to its members' most frequent category (ties: the first column).
void snap_categories(const DoubleMatrix& data, const FeatureGroups& groups, const std::vector<std::size_t>& assignment,
                     DoubleMatrix& centres) {
  for (const FeatureGroup& group : groups.groups()) {
    if (!group.one_hot) continue;
    const std::size_t choices = group.columns.size() + 1;
    std::vector<std::size_t> votes(centres.rows * choices, 0);
    for (std::size_t i = 0; i < data.rows; ++i) ++votes[assignment[i] * choices + category_of(data.row(i), group)];

    for (std::size_t k = 0; k < centres.rows; ++k) {
      const auto first = votes.begin() + static_cast<std::ptrdiff_t>(k * choices);
      const auto winner = static_cast<std::size_t>(std::max_element(first, first + choices) - first);
      for (std::size_t j = 0; j < group.columns.size(); ++j) centres(k, group.columns[j]) = j == winner ? 1.0 : 0.0;
    }
  }
}

double json_number(const nlohmann::json& value, const std::string& path) {
  if (!value.is_number()) {
    throw ParseError(fmt::format("Background::from_json: {} is {}, expected a number", path, value.dump()));
  }
  return value.get<double>();
}

}  // namespace

std::vector<std::string> FeatureGroups::names() const {
  std::vector<std::string> result;
  for (const FeatureGroup& group : groups_) result.push_back(group.name);
  return result;
}

FeatureGroups FeatureGroups::from_preprocessor(const Preprocessor& preprocessor) {
  return from_features(preprocessor.features());
}

FeatureGroups FeatureGroups::from_features(const std::vector<FeatureTransform>& features) {
  std::vector<FeatureGroup> groups;
  std::size_t width = 0;
  for (const FeatureTransform& feature : features) {
    FeatureGroup group;
    group.name = feature.column;
    group.one_hot = feature.type == FeatureType::Categorical;
    for (std::size_t c = 0; c < feature.width; ++c) group.columns.push_back(feature.offset + c);
    width = std::max(width, feature.offset + feature.width);
    groups.push_back(std::move(group));
  }
  return custom(width, std::move(groups));
}

FeatureGroups FeatureGroups::per_column(std::size_t width, const std::vector<std::string>& names) {
  if (!names.empty() && names.size() != width) {
    throw InvalidArgument(fmt::format(
        "FeatureGroups::per_column: {} names for {} columns; pass one name per column or none", names.size(), width));
  }
  std::vector<FeatureGroup> groups;
  for (std::size_t c = 0; c < width; ++c) {
    FeatureGroup group;
    group.name = names.empty() ? fmt::format("x{}", c) : names[c];
    group.columns = {c};
    groups.push_back(std::move(group));
  }
  return custom(width, std::move(groups));
}

FeatureGroups FeatureGroups::custom(std::size_t width, std::vector<FeatureGroup> groups) {
  if (width == 0 || groups.empty()) {
    throw InvalidArgument(fmt::format(
        "FeatureGroups: width {} with {} groups; at least one column and one group are required", width,
        groups.size()));
  }
  std::vector<std::size_t> owner(width, groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    FeatureGroup& group = groups[g];
    if (group.name.empty()) {
      throw InvalidArgument(fmt::format("FeatureGroups: group {} has an empty name; name every group", g));
    }
    if (group.columns.empty()) {
      throw InvalidArgument(fmt::format("FeatureGroups: group \"{}\" has no columns; give it at least one", group.name));
    }
    std::sort(group.columns.begin(), group.columns.end());
    for (std::size_t column : group.columns) {
      if (column >= width) {
        throw InvalidArgument(fmt::format("FeatureGroups: group \"{}\" names column {}, but the width is {}",
                                          group.name, column, width));
      }
      if (owner[column] != groups.size()) {
        throw InvalidArgument(fmt::format(
            "FeatureGroups: column {} is in group \"{}\" and in group \"{}\"; put each column in exactly one group",
            column, groups[owner[column]].name, group.name));
      }
      owner[column] = g;
    }
  }
  for (std::size_t column = 0; column < width; ++column) {
    if (owner[column] == groups.size()) {
      throw InvalidArgument(fmt::format(
          "FeatureGroups: column {} is in no group; every encoded column must belong to exactly one group", column));
    }
  }

  FeatureGroups result;
  result.width_ = width;
  result.groups_ = std::move(groups);
  return result;
}

Background Background::uniform(DoubleMatrix rows) {
  const std::size_t count = rows.rows;
  std::vector<double> weights(count, count == 0 ? 0.0 : 1.0 / static_cast<double>(count));
  return weighted(std::move(rows), std::move(weights));
}

Background Background::weighted(DoubleMatrix rows, std::vector<double> weights) {
  Background background;
  background.rows = std::move(rows);
  background.weights = std::move(weights);
  background.validate();
  return background;
}

void Background::validate() const {
  if (rows.rows == 0 || rows.cols == 0) {
    throw InvalidArgument(fmt::format(
        "Background: {} x {} rows; pass at least one encoded row with at least one column", rows.rows, rows.cols));
  }
  if (rows.data.size() != rows.rows * rows.cols) {
    throw InvalidArgument(fmt::format("Background: {} values for {} x {} rows; the matrix is inconsistent",
                                      rows.data.size(), rows.rows, rows.cols));
  }
  if (weights.size() != rows.rows) {
    throw InvalidArgument(fmt::format("Background: {} weights for {} rows; pass one weight per row",
                                      weights.size(), rows.rows));
  }
  double total = 0.0;
  for (std::size_t b = 0; b < weights.size(); ++b) {
    if (!std::isfinite(weights[b]) || weights[b] < 0.0) {
      throw InvalidArgument(fmt::format("Background: weights[{}] = {}; weights must be finite and non-negative", b,
                                        weights[b]));
    }
    total += weights[b];
  }
  if (total <= 0.0) {
    throw InvalidArgument("Background: the weights sum to 0; give at least one row a positive weight");
  }
  for (std::size_t i = 0; i < rows.data.size(); ++i) {
    if (!std::isfinite(rows.data[i])) {
      throw InvalidArgument(fmt::format("Background: row {} column {} is {}; impute missing values before explaining",
                                        i / rows.cols, i % rows.cols, rows.data[i]));
    }
  }
}

Background Background::sample(const Matrix& data, std::size_t count, std::uint64_t seed) {
  return sample(DoubleMatrix::from(data), count, seed);
}

Background Background::sample(const DoubleMatrix& data, std::size_t count, std::uint64_t seed) {
  if (data.rows == 0 || count == 0) {
    throw InvalidArgument(fmt::format(
        "Background::sample: {} rows requested from {} rows of data; both must be positive", count, data.rows));
  }
  // A partial Fisher-Yates shuffle picks `count` distinct rows; they are kept in file order.
  detail::RowRandom random(seed, 0);
  std::vector<std::size_t> order(data.rows);
  std::iota(order.begin(), order.end(), 0);
  const std::size_t picked = std::min(count, data.rows);
  for (std::size_t i = 0; i < picked; ++i) std::swap(order[i], order[i + random.below(data.rows - i)]);
  order.resize(picked);
  std::sort(order.begin(), order.end());

  DoubleMatrix rows(picked, data.cols);
  for (std::size_t i = 0; i < picked; ++i) std::copy(data.row(order[i]), data.row(order[i]) + data.cols, rows.row(i));
  return uniform(std::move(rows));
}

Background Background::kmeans(const Matrix& data, const FeatureGroups& groups, const KMeansOptions& options) {
  return kmeans(DoubleMatrix::from(data), groups, options);
}

Background Background::kmeans(const DoubleMatrix& data, const FeatureGroups& groups, const KMeansOptions& options) {
  if (data.rows == 0) throw InvalidArgument("Background::kmeans: the data have no rows; pass encoded rows");
  if (groups.width() != data.cols) {
    throw InvalidArgument(fmt::format("Background::kmeans: the data have {} columns but the groups cover {}",
                                      data.cols, groups.width()));
  }
  if (options.clusters_ == 0 || options.iterations_ == 0) {
    throw InvalidArgument(fmt::format(
        "Background::kmeans: clusters = {} and iterations = {}; both must be positive", options.clusters_,
        options.iterations_));
  }

  detail::RowRandom random(options.seed_, 0);
  const std::size_t clusters = std::min(options.clusters_, data.rows);
  DoubleMatrix centres = kmeans_plus_plus(data, clusters, random);
  const std::vector<std::size_t> assignment = lloyd(data, centres, options.iterations_);
  snap_categories(data, groups, assignment, centres);

  std::vector<std::size_t> counts(clusters, 0);
  for (std::size_t cluster : assignment) ++counts[cluster];
  DoubleMatrix kept(0, data.cols);
  std::vector<double> weights;
  for (std::size_t k = 0; k < clusters; ++k) {
    if (counts[k] == 0) continue;
    kept.data.insert(kept.data.end(), centres.row(k), centres.row(k) + data.cols);
    ++kept.rows;
    weights.push_back(static_cast<double>(counts[k]) / static_cast<double>(data.rows));
  }
  return weighted(std::move(kept), std::move(weights));
}

nlohmann::json Background::to_json() const {
  nlohmann::json rows_json = nlohmann::json::array();
  for (std::size_t r = 0; r < rows.rows; ++r) rows_json.push_back(std::vector<double>(rows.row(r), rows.row(r) + rows.cols));
  return {{"format", kBackgroundFormat}, {"columns", rows.cols}, {"rows", std::move(rows_json)}, {"weights", weights}};
}

Background Background::from_json(const nlohmann::json& json, const std::string& json_path) {
  if (!json.is_object()) {
    throw ParseError(fmt::format("Background::from_json: {} is {}, expected an object", json_path, json.dump()));
  }
  for (const char* key : {"format", "columns", "rows", "weights"}) {
    if (!json.contains(key)) {
      throw ParseError(fmt::format("Background::from_json: {}.{} is missing; write backgrounds with Background::to_json",
                                   json_path, key));
    }
  }
  if (json["format"] != kBackgroundFormat) {
    throw ParseError(fmt::format("Background::from_json: {}.format is {}, expected \"{}\"", json_path,
                                 json["format"].dump(), kBackgroundFormat));
  }
  if (!json["columns"].is_number_unsigned() || json["columns"].get<std::size_t>() == 0) {
    throw ParseError(fmt::format("Background::from_json: {}.columns is {}, expected a positive integer", json_path,
                                 json["columns"].dump()));
  }
  const std::size_t columns = json["columns"].get<std::size_t>();
  const nlohmann::json& rows_json = json["rows"];
  const nlohmann::json& weights_json = json["weights"];
  if (!rows_json.is_array() || !weights_json.is_array() || rows_json.size() != weights_json.size()) {
    throw ParseError(fmt::format(
        "Background::from_json: {}.rows and {}.weights must be arrays of equal length, got {} and {}", json_path,
        json_path, rows_json.is_array() ? std::to_string(rows_json.size()) : rows_json.type_name(),
        weights_json.is_array() ? std::to_string(weights_json.size()) : weights_json.type_name()));
  }

  DoubleMatrix rows(rows_json.size(), columns);
  std::vector<double> weights(weights_json.size());
  for (std::size_t r = 0; r < rows.rows; ++r) {
    const std::string row_path = fmt::format("{}.rows[{}]", json_path, r);
    if (!rows_json[r].is_array() || rows_json[r].size() != columns) {
      throw ParseError(fmt::format("Background::from_json: {} is not an array of {} numbers", row_path, columns));
    }
    for (std::size_t c = 0; c < columns; ++c) rows(r, c) = json_number(rows_json[r][c], fmt::format("{}[{}]", row_path, c));
    weights[r] = json_number(weights_json[r], fmt::format("{}.weights[{}]", json_path, r));
  }

  try {
    return weighted(std::move(rows), std::move(weights));
  } catch (const InvalidArgument& error) {
    throw ParseError(fmt::format("Background::from_json: {}: {}", json_path, error.what()));
  }
}

}  // namespace lepton
