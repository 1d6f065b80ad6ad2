// Federated fitting of the shared preprocessor: clients send per-column statistics, never rows.
#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "lepton/distributed.hpp"

namespace lepton {

namespace {

struct ClientState {
  double rows = 0;
  nlohmann::json features;  // Preprocessor::to_json()["features"]
};

void check_same_columns(const nlohmann::json& reference, const nlohmann::json& other, std::size_t rank) {
  if (other.size() != reference.size()) {
    throw InvalidArgument(fmt::format("federated_preprocessor: client rank {} has {} features but another client "
                                      "has {}; give every client the same feature list",
                                      rank, other.size(), reference.size()));
  }
  for (std::size_t f = 0; f < reference.size(); ++f) {
    // TODO: pool log columns' statistics like the numeric ones; until then a site cannot have them.
    if (other[f].contains("log")) {
      throw InvalidArgument(fmt::format("federated_preprocessor: feature {} ({}) of client rank {} has a log column, "
                                        "which federated runs do not pool; set log_column false in its features",
                                        f, other[f].at("column").dump(), rank));
    }
    if (other[f].at("column") != reference[f].at("column") || other[f].at("type") != reference[f].at("type")) {
      throw InvalidArgument(fmt::format("federated_preprocessor: feature {} of client rank {} is {} ({}), but "
                                        "another client has {} ({}); give every client the same feature list",
                                        f, rank, other[f].at("column").dump(), other[f].at("type").dump(),
                                        reference[f].at("column").dump(), reference[f].at("type").dump()));
    }
  }
}

// Pools (rows, mean, population scale) exactly: E[x^2] = scale^2 + mean^2 per client.
// NOTE: a client whose column was constant reports scale 1 (the preprocessor's guard against division by
// zero), which overstates the pooled variance slightly.
void pool_numeric(nlohmann::json& merged, const std::vector<ClientState>& clients, std::size_t f) {
  double rows = 0, sum = 0, squares = 0, fill = 0;
  for (const ClientState& client : clients) {
    const nlohmann::json& feature = client.features[f];
    const double mean = feature.at("mean").get<double>();
    const double scale = feature.at("scale").get<double>();
    rows += client.rows;
    sum += client.rows * mean;
    squares += client.rows * (scale * scale + mean * mean);
    fill += client.rows * feature.at("fill").get<double>();
  }

  const double mean = sum / rows;
  const double variance = squares / rows - mean * mean;
  const double scale = variance > 0 ? std::sqrt(variance) : 1.0;
  merged["mean"] = mean;
  merged["scale"] = std::isfinite(scale) && scale > 0 ? scale : 1.0;
  merged["fill"] = fill / rows;  // NOTE: the mean of the client medians, not the pooled median.
}

// Pools each text bucket's (rows, mean, population scale) as pool_numeric pools one column.
// NOTE: as there, a bucket that was constant at a client reports scale 1, which overstates the pooled variance.
void pool_text(nlohmann::json& merged, const std::vector<ClientState>& clients, std::size_t f) {
  std::vector<double> means, scales;
  for (std::size_t b = 0; b < kTextBuckets; ++b) {
    double rows = 0, sum = 0, squares = 0;
    for (const ClientState& client : clients) {
      const double mean = client.features[f].at("bucket_mean").at(b).get<double>();
      const double scale = client.features[f].at("bucket_scale").at(b).get<double>();
      rows += client.rows;
      sum += client.rows * mean;
      squares += client.rows * (scale * scale + mean * mean);
    }
    const double mean = sum / rows;
    const double variance = squares / rows - mean * mean;
    means.push_back(mean);
    scales.push_back(variance > 1e-24 && std::isfinite(variance) ? std::sqrt(variance) : 1.0);
  }
  merged["bucket_mean"] = means;
  merged["bucket_scale"] = scales;
}

void pool_categorical(nlohmann::json& merged, const std::vector<ClientState>& clients, std::size_t f) {
  std::set<std::string> categories;
  const ClientState* largest = &clients.front();
  for (const ClientState& client : clients) {
    for (const auto& category : client.features[f].at("categories")) {
      categories.insert(category.get<std::string>());
    }
    if (client.rows > largest->rows) largest = &client;
  }
  merged["categories"] = std::vector<std::string>(categories.begin(), categories.end());
  merged["fill_category"] = largest->features[f].at("fill_category");
}

}  // namespace

Preprocessor federated_preprocessor(ProcessGroup& group, const Preprocessor* local, std::size_t rows) {
  const nlohmann::json mine = local == nullptr ? nlohmann::json{{"rows", 0}}
                                               : nlohmann::json{{"rows", rows}, {"preprocessor", local->to_json()}};

  std::vector<ClientState> clients;
  const std::vector<std::string> gathered = group.all_gather_bytes(mine.dump());
  for (std::size_t rank = 0; rank < gathered.size(); ++rank) {
    const nlohmann::json j = nlohmann::json::parse(gathered[rank]);
    if (j.at("rows").get<double>() <= 0) continue;
    clients.push_back({j.at("rows").get<double>(), j.at("preprocessor").at("features")});
    check_same_columns(clients.front().features, clients.back().features, rank);
  }
  if (clients.empty()) {
    throw InvalidArgument("federated_preprocessor: no client sent a fitted preprocessor with rows; every client "
                          "must pass its local preprocessor and row count");
  }

  nlohmann::json features = nlohmann::json::array();
  std::size_t offset = 0;
  for (std::size_t f = 0; f < clients.front().features.size(); ++f) {
    nlohmann::json merged = clients.front().features[f];
    if (merged.at("type") == "numeric") {
      pool_numeric(merged, clients, f);
      merged["width"] = 1;
    } else if (merged.at("type") == "text") {
      pool_text(merged, clients, f);
      merged["width"] = kTextBuckets;
    } else {
      pool_categorical(merged, clients, f);
      merged["width"] = merged["categories"].size();
    }
    merged["offset"] = offset;
    offset += merged["width"].get<std::size_t>();
    features.push_back(std::move(merged));
  }
  return Preprocessor::from_json({{"features", features}, {"encoded_width", offset}}, "$federated");
}

}  // namespace lepton
