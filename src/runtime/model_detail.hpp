#pragma once
// Names that the model file stores for enums, JSON field readers shared by model.cpp and artifact.cpp, and the
// check of input products shared by Mlp::validate and the explainers. Not installed. The file format fixes the
// enum spellings, so they stay independent of any to_string().

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepton/model.hpp"

namespace lepton::detail {

/// Returns "binary_classification", "multiclass_classification" or "regression".
std::string task_name(Task task);
/// Parses a task_name() spelling. Returns false for anything else.
bool parse_task_name(const std::string& name, Task& task);

/// Parses a to_string(Activation) spelling. Returns false for anything else.
bool parse_activation(const std::string& name, Activation& activation);

/// Returns the network outputs that `task` needs: 1 for binary and regression, one per class for multiclass.
std::size_t expected_outputs(Task task, const TargetEncoding& target);

/// Returns member `key` of the object `parent`, which sits at `path`. Throws ParseError
/// "missing required field ... (<path>.<key>)" when it is absent.
const nlohmann::json& require_member(const nlohmann::json& parent, const std::string& path, const std::string& key);

/// Throws ParseError when `value` (at `path`) is not a JSON object.
void require_object(const nlohmann::json& value, const std::string& path);

/// Throws ParseError naming the first member of `object` whose key is not in `allowed`.
void reject_unknown_members(const nlohmann::json& object, const std::string& path,
                            std::initializer_list<const char*> allowed);

std::string read_string(const nlohmann::json& value, const std::string& path);
std::uint64_t read_unsigned(const nlohmann::json& value, const std::string& path);
double read_number(const nlohmann::json& value, const std::string& path);

/// Throws InvalidArgument, prefixed by `caller`, when `products` leave none of the first layer's
/// `first_layer_inputs` columns to the caller, or a product reads a column outside them, has a term that is not
/// finite, or has a scale that is not > 0.
void check_products(const std::vector<InputProduct>& products, std::size_t first_layer_inputs, const char* caller);

}  // namespace lepton::detail
