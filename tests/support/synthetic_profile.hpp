#pragma once
// Synthetic data profiles shared by the configurator tests, so that they judge the same AI4I-like shape.

#include <cstddef>
#include <string>

#include "lepton/dataset.hpp"

namespace lepton::test_support {

/// Returns a column profile of `kind` with `distinct` distinct values.
inline ColumnProfile column(const std::string& name, ColumnKind kind, std::size_t distinct = 100) {
  ColumnProfile profile;
  profile.name = name;
  profile.kind = kind;
  profile.distinct = distinct;
  profile.reason = "synthetic";
  return profile;
}

/// Returns a profile shaped like AI4I: an ID, five numeric columns and a 3-category column (8 encoded inputs).
/// The binary target "label" has `positives` of `rows` rows in class "1". One constant, one empty and one
/// free-text column complete it, which inference must drop.
inline DataProfile binary_profile(std::size_t rows, std::size_t positives) {
  DataProfile profile;
  profile.rows = rows;
  profile.columns = {column("id", ColumnKind::IdLike, rows),      column("x1", ColumnKind::Numeric),
                     column("x2", ColumnKind::Numeric),           column("x3", ColumnKind::Numeric),
                     column("x4", ColumnKind::Numeric),           column("x5", ColumnKind::Numeric),
                     column("grade", ColumnKind::Categorical, 3), column("plant", ColumnKind::Constant, 1),
                     column("blank", ColumnKind::Empty, 0),       column("notes", ColumnKind::Text, 5000),
                     column("label", ColumnKind::Categorical, 2)};
  profile.target = "label";
  profile.classes = {"0", "1"};
  profile.class_counts = {rows - positives, positives};
  profile.minority_fraction = static_cast<double>(positives) / static_cast<double>(rows);
  return profile;
}

}  // namespace lepton::test_support
