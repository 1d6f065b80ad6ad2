#include "lepton/table.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <system_error>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "runtime/text_detail.hpp"

namespace lepton {

namespace detail {

std::string_view trim_blanks(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && (text[begin] == ' ' || text[begin] == '\t')) {
    ++begin;
  }
  while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) {
    --end;
  }
  return text.substr(begin, end - begin);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Two rows of the dynamic-programming table are enough.
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    previous[j] = j;
  }

  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

namespace {

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string closest_name(std::string_view name, const std::vector<std::string>& candidates) {
  for (const std::string& candidate : candidates) {
    if (equal_ignoring_case(name, candidate)) {
      return candidate;
    }
  }

  const std::size_t limit = std::max<std::size_t>(2, name.size() / 3);
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const std::size_t distance = edit_distance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) {
    if (!text.empty()) {
      text += ", ";
    }
    text += "'" + name + "'";
  }
  return text;
}

}  // namespace detail

namespace {

void check_unique_names(const std::vector<std::string>& names, const std::string& source) {
  std::unordered_set<std::string_view> seen;
  for (const std::string& name : names) {
    if (!seen.insert(name).second) {
      throw InvalidArgument(
          fmt::format("duplicate column name '{}' in {}; give every column a unique name", name, source));
    }
  }
}

}  // namespace

Table::Table(std::vector<std::string> column_names, std::vector<std::vector<std::string>> columns,
             std::string source)
    : source_(std::move(source)) {
  if (column_names.size() != columns.size()) {
    throw InvalidArgument(fmt::format("table {}: {} column names for {} columns; pass one name per column",
                                      source_, column_names.size(), columns.size()));
  }
  check_unique_names(column_names, source_);

  rows_ = columns.empty() ? 0 : columns.front().size();
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (columns[c].size() != rows_) {
      throw InvalidArgument(fmt::format("table {}: column '{}' has {} cells but column '{}' has {}; every "
                                        "column needs the same number of rows",
                                        source_, column_names[c], columns[c].size(), column_names[0], rows_));
    }
  }

  // A host-built table has no missing-value markers, so only an empty cell counts as missing.
  missing_.resize(columns.size());
  for (std::size_t c = 0; c < columns.size(); ++c) {
    missing_[c].resize(rows_);
    for (std::size_t r = 0; r < rows_; ++r) {
      missing_[c][r] = columns[c][r].empty() ? 1 : 0;
    }
  }

  names_ = std::move(column_names);
  cells_ = std::move(columns);
}

std::optional<std::size_t> Table::find_column(const std::string& name) const {
  const auto found = std::find(names_.begin(), names_.end(), name);
  if (found == names_.end()) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(found - names_.begin());
}

std::size_t Table::column_index(const std::string& name) const {
  if (const std::optional<std::size_t> index = find_column(name)) {
    return *index;
  }

  const std::string suggestion = detail::closest_name(name, names_);
  if (!suggestion.empty()) {
    throw InvalidArgument(
        fmt::format("column '{}' not found in {}; did you mean '{}'?", name, source_, suggestion));
  }
  throw InvalidArgument(fmt::format("column '{}' not found in {}; available columns: {}", name, source_,
                                    detail::quoted_list(names_)));
}

std::string Table::locate(std::size_t row, std::size_t column) const {
  if (column < locations_.size() && row < locations_[column].size()) {
    const CellLocation& location = locations_[column][row];
    return fmt::format("{}:{}:{}", source_, location.line, location.column);
  }

  // Rows are 0-based here, the same index that cell() and select_rows() take.
  const std::string name = column < names_.size() ? names_[column] : fmt::format("#{}", column);
  return fmt::format("{} row {} column '{}'", source_, row, name);
}

Table Table::select_rows(const std::vector<std::size_t>& row_indices) const {
  Table selected;
  selected.source_ = source_;
  selected.names_ = names_;
  selected.rows_ = row_indices.size();
  selected.cells_.resize(names_.size());
  selected.missing_.resize(names_.size());
  if (!locations_.empty()) {
    selected.locations_.resize(names_.size());
  }

  for (std::size_t row : row_indices) {
    if (row >= rows_) {
      throw InvalidArgument(fmt::format("select_rows: row index {} is out of range for {} with {} rows",
                                        row, source_, rows_));
    }
  }

  for (std::size_t c = 0; c < names_.size(); ++c) {
    selected.cells_[c].reserve(row_indices.size());
    selected.missing_[c].reserve(row_indices.size());
    for (std::size_t row : row_indices) {
      selected.cells_[c].push_back(cells_[c][row]);
      selected.missing_[c].push_back(missing_[c][row]);
    }
    if (!locations_.empty()) {
      selected.locations_[c].reserve(row_indices.size());
      for (std::size_t row : row_indices) {
        selected.locations_[c].push_back(locations_[c][row]);
      }
    }
  }
  return selected;
}

void Table::set_column_names(std::vector<std::string> names) {
  if (rows_ != 0) {
    throw InvalidArgument(fmt::format("set_column_names: table {} already has {} rows; set the names before "
                                      "appending rows",
                                      source_, rows_));
  }
  check_unique_names(names, source_);

  names_ = std::move(names);
  cells_.assign(names_.size(), {});
  missing_.assign(names_.size(), {});
  locations_.clear();
}

void Table::append_row(std::vector<std::string> cells, std::vector<std::uint8_t> missing,
                       std::vector<CellLocation> locations) {
  const std::size_t width = names_.size();
  if (cells.size() != width || (!missing.empty() && missing.size() != width) ||
      (!locations.empty() && locations.size() != width)) {
    throw InvalidArgument(fmt::format("append_row: table {} has {} columns but the row has {} cells, {} missing "
                                      "flags and {} locations; pass one of each per column (flags and "
                                      "locations may be empty)",
                                      source_, width, cells.size(), missing.size(), locations.size()));
  }

  // Locations are all-or-nothing: either every row has them or none does.
  if (rows_ == 0 && !locations.empty()) {
    locations_.assign(width, {});
    for (std::size_t c = 0; c < width; ++c) {
      locations_[c].reserve(cells_[c].capacity());
    }
  }
  const bool table_has_locations = !locations_.empty();
  if (table_has_locations != !locations.empty() && width > 0) {
    throw InvalidArgument(fmt::format("append_row: table {} {} cell locations, but this row {}; pass "
                                      "locations with every row or with none",
                                      source_, table_has_locations ? "has" : "has no",
                                      locations.empty() ? "has none" : "has them"));
  }

  for (std::size_t c = 0; c < width; ++c) {
    const bool is_missing = missing.empty() ? false : missing[c] != 0;
    missing_[c].push_back(is_missing ? 1 : 0);
    cells_[c].push_back(is_missing ? std::string() : std::move(cells[c]));
    if (table_has_locations) {
      locations_[c].push_back(locations[c]);
    }
  }
  ++rows_;
}

void Table::reserve_rows(std::size_t rows) {
  for (std::size_t c = 0; c < names_.size(); ++c) {
    cells_[c].reserve(rows);
    missing_[c].reserve(rows);
  }
  // Locations are created by the first append_row that has them, which reserves the same capacity.
}

std::optional<double> parse_number(const std::string& text) {
  std::string_view digits = detail::trim_blanks(text);

  // from_chars rejects a leading '+', which strtod and spreadsheets accept.
  if (digits.size() > 1 && digits[0] == '+' && digits[1] != '-' && digits[1] != '+') {
    digits.remove_prefix(1);
  }
  if (digits.empty()) {
    return std::nullopt;
  }

  double value = 0;
  const char* end = digits.data() + digits.size();
  const auto [stop, error] = std::from_chars(digits.data(), end, value, std::chars_format::general);
  if (error != std::errc() || stop != end || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace lepton
