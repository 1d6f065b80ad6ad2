// The in-memory model: activations, the MLP's shape checks and provenance, plus the JSON field
// readers that the artifact parser shares.

#include "lepton/model.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/model_detail.hpp"

namespace lepton {

namespace detail {

std::string task_name(Task task) {
  switch (task) {
    case Task::BinaryClassification: return "binary_classification";
    case Task::MulticlassClassification: return "multiclass_classification";
    case Task::Regression: return "regression";
  }
  throw InternalError(fmt::format("task_name: Task value {} is out of range", static_cast<int>(task)));
}

bool parse_task_name(const std::string& name, Task& task) {
  for (const Task candidate : {Task::BinaryClassification, Task::MulticlassClassification, Task::Regression}) {
    if (name == task_name(candidate)) {
      task = candidate;
      return true;
    }
  }
  return false;
}

bool parse_activation(const std::string& name, Activation& activation) {
  for (const Activation candidate : {Activation::Identity, Activation::Relu, Activation::Gelu, Activation::Tanh}) {
    if (name == to_string(candidate)) {
      activation = candidate;
      return true;
    }
  }
  return false;
}

std::size_t expected_outputs(Task task, const TargetEncoding& target) {
  return task == Task::MulticlassClassification ? target.classes.size() : 1;
}

void require_object(const nlohmann::json& value, const std::string& path) {
  if (!value.is_object()) {
    throw ParseError(fmt::format("expected a JSON object, got {} ({})", value.type_name(), path));
  }
}

const nlohmann::json& require_member(const nlohmann::json& parent, const std::string& path, const std::string& key) {
  require_object(parent, path);
  const auto found = parent.find(key);
  if (found == parent.end()) {
    throw ParseError(fmt::format("missing required field \"{}\"; the file is incomplete or not written by Lepton "
                                 "({}.{})",
                                 key, path, key));
  }
  return *found;
}

void reject_unknown_members(const nlohmann::json& object, const std::string& path,
                            std::initializer_list<const char*> allowed) {
  for (const auto& item : object.items()) {
    const bool known = std::any_of(allowed.begin(), allowed.end(),
                                   [&](const char* key) { return item.key() == key; });
    if (!known) {
      throw ParseError(fmt::format("unknown field \"{}\"; remove it, or put additions under $.extensions ({}.{})",
                                   item.key(), path, item.key()));
    }
  }
}

std::string read_string(const nlohmann::json& value, const std::string& path) {
  if (!value.is_string()) {
    throw ParseError(fmt::format("expected a string, got {} ({})", value.dump(), path));
  }
  return value.get<std::string>();
}

std::uint64_t read_unsigned(const nlohmann::json& value, const std::string& path) {
  if (!value.is_number_unsigned()) {
    throw ParseError(fmt::format("expected a non-negative integer, got {} ({})", value.dump(), path));
  }
  return value.get<std::uint64_t>();
}

double read_number(const nlohmann::json& value, const std::string& path) {
  if (!value.is_number()) {
    throw ParseError(fmt::format("expected a number, got {} ({})", value.dump(), path));
  }
  return value.get<double>();
}

}  // namespace detail

std::string to_string(Activation activation) {
  switch (activation) {
    case Activation::Identity: return "identity";
    case Activation::Relu: return "relu";
    case Activation::Gelu: return "gelu";
    case Activation::Tanh: return "tanh";
  }
  throw InternalError(fmt::format("to_string: Activation value {} is out of range", static_cast<int>(activation)));
}

std::string to_string(LayerPrecision precision) {
  switch (precision) {
    case LayerPrecision::F32: return "f32";
    case LayerPrecision::Int8: return "i8";
  }
  throw InternalError(fmt::format("to_string: LayerPrecision value {} is out of range", static_cast<int>(precision)));
}

std::size_t Mlp::parameter_count() const {
  std::size_t count = 0;
  for (const DenseLayer& layer : layers) {
    count += layer.weight.size() + layer.bias.size();
  }
  return count;
}

void Mlp::validate() const {
  if (layers.empty()) {
    throw InvalidArgument("Mlp::validate: the network has no layers; add at least one DenseLayer");
  }

  for (std::size_t i = 0; i < layers.size(); ++i) {
    const DenseLayer& layer = layers[i];
    if (layer.inputs == 0 || layer.outputs == 0) {
      throw InvalidArgument(fmt::format("Mlp::validate: layer {} has {} inputs and {} outputs; both must be "
                                        "at least 1",
                                        i, layer.inputs, layer.outputs));
    }
    if (layer.outputs > std::numeric_limits<std::size_t>::max() / layer.inputs ||
        layer.weight.size() != layer.outputs * layer.inputs) {
      throw InvalidArgument(fmt::format("Mlp::validate: layer {} weight has {} values, expected outputs x inputs "
                                        "= {} x {}",
                                        i, layer.weight.size(), layer.outputs, layer.inputs));
    }
    if (layer.bias.size() != layer.outputs) {
      throw InvalidArgument(fmt::format("Mlp::validate: layer {} bias has {} values, expected outputs = {}", i,
                                        layer.bias.size(), layer.outputs));
    }
    if (i > 0 && layer.inputs != layers[i - 1].outputs) {
      throw InvalidArgument(fmt::format("Mlp::validate: layer {} has {} inputs but layer {} has {} outputs; make "
                                        "each layer's inputs equal the previous layer's outputs",
                                        i, layer.inputs, i - 1, layers[i - 1].outputs));
    }
  }

  // Logits and the standardized regression value are unbounded, so the output layer must not squash them.
  if (layers.back().activation != Activation::Identity) {
    throw InvalidArgument(fmt::format("Mlp::validate: the last layer has activation '{}', expected 'identity'",
                                      to_string(layers.back().activation)));
  }

  detail::check_products(products, layers.front().inputs, "Mlp::validate");
}

namespace detail {

void check_products(const std::vector<InputProduct>& products, std::size_t first_layer_inputs, const char* caller) {
  if (products.size() >= first_layer_inputs) {
    throw InvalidArgument(fmt::format("{}: {} products leave none of the first layer's {} inputs for the caller's "
                                      "columns; the first layer must read more columns than products",
                                      caller, products.size(), first_layer_inputs));
  }

  const std::size_t inputs = first_layer_inputs - products.size();
  for (std::size_t k = 0; k < products.size(); ++k) {
    const InputProduct& product = products[k];
    if (product.left >= inputs || product.right >= inputs) {
      throw InvalidArgument(fmt::format("{}: product {} reads columns {} and {}, but the network takes {} columns; "
                                        "a product reads input columns only",
                                        caller, k, product.left, product.right, inputs));
    }
    const double terms[] = {product.left_scale,  product.left_shift, product.right_scale,
                            product.right_shift, product.mean,       product.scale,
                            product.step.value_or(0.0)};
    if (!std::all_of(std::begin(terms), std::end(terms), [](double v) { return std::isfinite(v); }) ||
        !(product.scale > 0)) {
      throw InvalidArgument(fmt::format("{}: product {} has a term that is not finite or a scale of {}; every "
                                        "term must be finite and the scale > 0",
                                        caller, k, product.scale));
    }
  }
}

}  // namespace detail

void append_products(const std::vector<InputProduct>& products, const float* rows, std::size_t count,
                     std::size_t inputs, float* out) {
  const std::size_t width = inputs + products.size();
  for (std::size_t r = 0; r < count; ++r) {
    const float* row = rows + r * inputs;
    float* expanded = out + r * width;
    std::copy(row, row + inputs, expanded);
    for (std::size_t k = 0; k < products.size(); ++k) expanded[inputs + k] = static_cast<float>(products[k].value(row));
  }
}

nlohmann::json Provenance::to_json() const {
  return {{"lepton_version", lepton_version}, {"created_utc", created_utc},
          {"data_file", data_file},           {"data_sha256", data_sha256},
          {"requirements_sha256", requirements_sha256}, {"seed", seed}};
}

Provenance Provenance::from_json(const nlohmann::json& j, const std::string& json_path) {
  detail::require_object(j, json_path);
  detail::reject_unknown_members(
      j, json_path, {"lepton_version", "created_utc", "data_file", "data_sha256", "requirements_sha256", "seed"});

  const auto string_field = [&](const char* key) {
    return detail::read_string(detail::require_member(j, json_path, key), json_path + "." + key);
  };

  Provenance provenance;
  provenance.lepton_version = string_field("lepton_version");
  provenance.created_utc = string_field("created_utc");
  provenance.data_file = string_field("data_file");
  provenance.data_sha256 = string_field("data_sha256");
  provenance.requirements_sha256 = string_field("requirements_sha256");
  provenance.seed = detail::read_unsigned(detail::require_member(j, json_path, "seed"), json_path + ".seed");
  return provenance;
}

}  // namespace lepton
