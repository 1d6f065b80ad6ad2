#pragma once
/// An in-memory table of raw text cells, read from CSV or built by the host, and the CSV reader.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lepton {

/// Where a cell came from, for error messages: 1-based line and column (in bytes) of its first character.
struct CellLocation {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

/// A table of text cells in column-major order. Every column has rows() cells. A cell is missing
/// when the reader saw one of the configured missing-value markers; its text is then empty.
class Table {
 public:
  Table() = default;

  /// Builds a table from named columns of equal length. `source` names the origin in error messages.
  Table(std::vector<std::string> column_names, std::vector<std::vector<std::string>> columns,
        std::string source = "<memory>");

  std::size_t rows() const noexcept { return rows_; }
  std::size_t columns() const noexcept { return names_.size(); }
  const std::string& source() const noexcept { return source_; }
  const std::vector<std::string>& column_names() const noexcept { return names_; }

  /// Returns the index of the column with this exact name, or std::nullopt.
  std::optional<std::size_t> find_column(const std::string& name) const;

  /// Returns the index of the column, or throws InvalidArgument naming the closest existing column.
  std::size_t column_index(const std::string& name) const;

  const std::string& cell(std::size_t row, std::size_t column) const { return cells_[column][row]; }
  bool is_missing(std::size_t row, std::size_t column) const { return missing_[column][row] != 0; }
  const std::vector<std::string>& column(std::size_t column) const { return cells_[column]; }

  /// Returns "file:line:column" for a cell when the table came from a file, else "<source> row R column 'name'".
  std::string locate(std::size_t row, std::size_t column) const;

  /// Returns a table with only the given rows, in the given order (locations are kept).
  Table select_rows(const std::vector<std::size_t>& row_indices) const;

  // Builders used by readers. Rows are appended whole so that columns stay the same length.
  void set_source(std::string source) { source_ = std::move(source); }
  void set_column_names(std::vector<std::string> names);
  void append_row(std::vector<std::string> cells, std::vector<std::uint8_t> missing,
                  std::vector<CellLocation> locations);
  /// Reserves room for `rows` rows in every column, so that a reader that knows the row count does not
  /// regrow the columns while appending. Call it after set_column_names().
  void reserve_rows(std::size_t rows);

 private:
  std::string source_ = "<memory>";
  std::vector<std::string> names_;
  std::vector<std::vector<std::string>> cells_;
  std::vector<std::vector<std::uint8_t>> missing_;
  std::vector<std::vector<CellLocation>> locations_;  // empty when the table was not read from text
  std::size_t rows_ = 0;
};

/// Options of the CSV reader.
struct CsvOptions {
  /// Field delimiter. std::nullopt sniffs ',', ';' or '\t' from the header line.
  std::optional<char> delimiter;
  /// Cell texts (after trimming spaces) that mean "missing". Matched exactly and case-sensitively.
  std::vector<std::string> missing_markers{"", "NA", "N/A", "NaN", "nan", "?", "null", "NULL"};
  /// Trim spaces and tabs around unquoted cells and header names.
  bool trim_whitespace = true;

  CsvOptions& with_delimiter(char d) { delimiter = d; return *this; }
  CsvOptions& with_missing_markers(std::vector<std::string> markers) { missing_markers = std::move(markers); return *this; }
};

/// Reads a CSV file with a header row (RFC 4180 quoting, UTF-8 BOM, CRLF or LF line ends).
/// Throws FileNotFound, IoError, or ParseError with file:line:column (ragged row, open quote, empty file).
Table read_csv(const std::string& path, const CsvOptions& options = {});

/// Parses CSV text held in memory. `source` names it in error messages.
Table parse_csv(const std::string& text, const std::string& source, const CsvOptions& options = {});

/// Parses a cell as a finite double. Accepts surrounding spaces, rejects trailing garbage.
std::optional<double> parse_number(const std::string& text);

}  // namespace lepton
