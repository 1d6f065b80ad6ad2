// CSV reader: one pass over the whole text in memory, with RFC 4180 quoting.

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/table.hpp"
#include "runtime/text_detail.hpp"

namespace lepton {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

/// One field as scanned, before missing-marker matching.
struct Field {
  std::string text;
  CellLocation location;
  bool quoted = false;
};

// Picks the candidate that occurs most often outside quotes in the first line. Ties go to the
// earlier candidate, and a line without any candidate is a one-column file read with ','.
char sniff_delimiter(std::string_view text) {
  constexpr std::array<char, 3> candidates{',', ';', '\t'};
  std::array<std::size_t, 3> counts{};
  bool in_quotes = false;
  for (char ch : text) {
    if (ch == '"') {
      in_quotes = !in_quotes;
    } else if (!in_quotes && (ch == '\n' || ch == '\r')) {
      break;
    } else if (!in_quotes) {
      for (std::size_t i = 0; i < candidates.size(); ++i) {
        counts[i] += ch == candidates[i] ? 1 : 0;
      }
    }
  }

  const auto best = std::max_element(counts.begin(), counts.end());
  return *best == 0 ? ',' : candidates[static_cast<std::size_t>(best - counts.begin())];
}

std::string describe_char(char ch) {
  switch (ch) {
    case '\t': return "'\\t'";
    case '\r': return "'\\r'";
    case '\n': return "'\\n'";
    default: return fmt::format("'{}'", ch);
  }
}

/// Scans records from CSV text. Lines and columns are 1-based; columns count bytes.
class CsvScanner {
 public:
  CsvScanner(std::string_view text, std::string source, char delimiter, bool trim)
      : text_(text), source_(std::move(source)), delimiter_(delimiter), trim_(trim) {}

  bool at_end() const { return pos_ >= text_.size(); }
  std::uint32_t line() const { return line_; }
  std::uint32_t column() const { return static_cast<std::uint32_t>(pos_ - line_start_ + 1); }

  /// True when the rest of the current line contains only spaces or tabs.
  bool at_blank_line() const {
    for (std::size_t i = pos_; i < text_.size(); ++i) {
      const char ch = text_[i];
      if (ch == '\n' || ch == '\r') {
        return true;
      }
      if (ch != ' ' && ch != '\t') {
        return false;
      }
    }
    return true;
  }

  void skip_line() {
    while (!at_end() && text_[pos_] != '\n' && text_[pos_] != '\r') {
      ++pos_;
    }
    consume_line_end();
  }

  /// Reads one record into `fields` (cleared first) and moves past its line end.
  void read_record(std::vector<Field>& fields) {
    fields.clear();
    while (true) {
      fields.emplace_back();
      read_field(fields.back());

      if (at_end()) {
        return;
      }
      const char ch = text_[pos_];
      if (ch == delimiter_) {
        ++pos_;
        continue;
      }
      consume_line_end();
      return;
    }
  }

  [[noreturn]] void fail(std::uint32_t line, std::uint32_t column, const std::string& what) const {
    throw ParseError(fmt::format("{}:{}:{}: {}", source_, line, column, what));
  }

 private:
  bool is_blank(char ch) const { return (ch == ' ' || ch == '\t') && ch != delimiter_; }
  bool is_field_end(char ch) const { return ch == delimiter_ || ch == '\n' || ch == '\r'; }

  // Accepts "\r\n", "\n" and a lone "\r" as one line end.
  void consume_line_end() {
    if (at_end()) {
      return;
    }
    if (text_[pos_] == '\r') {
      ++pos_;
    }
    if (!at_end() && text_[pos_] == '\n') {
      ++pos_;
    }
    ++line_;
    line_start_ = pos_;
  }

  void skip_blanks() {
    while (trim_ && !at_end() && is_blank(text_[pos_])) {
      ++pos_;
    }
  }

  // With trimming off, skip_blanks() does not move, so an unquoted field keeps its leading blanks
  // and a quote after a blank is literal text.
  void read_field(Field& field) {
    skip_blanks();
    if (!at_end() && text_[pos_] == '"') {
      read_quoted_field(field);
      return;
    }

    field.location = {line_, column()};
    const std::size_t begin = pos_;
    while (!at_end() && !is_field_end(text_[pos_])) {
      ++pos_;
    }
    std::string_view raw = text_.substr(begin, pos_ - begin);
    field.text = trim_ ? std::string(detail::trim_blanks(raw)) : std::string(raw);
    field.quoted = false;
  }

  void read_quoted_field(Field& field) {
    const std::uint32_t open_line = line_;
    const std::uint32_t open_column = column();
    field.location = {open_line, open_column};
    field.quoted = true;
    field.text.clear();
    ++pos_;

    while (true) {
      const std::size_t quote = text_.find('"', pos_);
      if (quote == std::string_view::npos) {
        fail(open_line, open_column,
             "quoted field is not closed before the end of the file. Add the closing '\"', and write a quote "
             "inside a quoted field as '\"\"'");
      }
      append_quoted_text(field.text, text_.substr(pos_, quote - pos_));
      pos_ = quote + 1;

      if (!at_end() && text_[pos_] == '"') {
        field.text += '"';
        ++pos_;
        continue;
      }
      break;
    }

    check_after_closing_quote();
  }

  // Copies quoted text and keeps line and column counts right across embedded line ends.
  void append_quoted_text(std::string& out, std::string_view chunk) {
    out.append(chunk);
    const std::size_t chunk_begin = static_cast<std::size_t>(chunk.data() - text_.data());
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const char ch = chunk[i];
      const bool crlf = ch == '\r' && i + 1 < chunk.size() && chunk[i + 1] == '\n';
      if (ch == '\n' || (ch == '\r' && !crlf)) {
        ++line_;
        line_start_ = chunk_begin + i + 1;
      }
    }
  }

  void check_after_closing_quote() {
    const std::size_t closing = pos_ - 1;
    while (!at_end() && (text_[pos_] == ' ' || text_[pos_] == '\t') && text_[pos_] != delimiter_) {
      ++pos_;
    }
    if (at_end() || is_field_end(text_[pos_])) {
      return;
    }
    fail(line_, column(),
         fmt::format("unexpected {} after the closing quote at column {}. A quoted field must end at a "
                     "delimiter or line end; quote the whole field and write inner quotes as '\"\"'",
                     describe_char(text_[pos_]), closing - line_start_ + 1));
  }

  std::string_view text_;
  std::string source_;
  char delimiter_;
  bool trim_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
  std::uint32_t line_ = 1;
};

void check_header(const std::vector<Field>& header, const CsvScanner& scanner) {
  std::unordered_map<std::string_view, std::size_t> seen;
  for (std::size_t c = 0; c < header.size(); ++c) {
    const Field& field = header[c];
    if (field.text.empty()) {
      scanner.fail(field.location.line, field.location.column,
                   fmt::format("column {} of the header has an empty name. Give every column a name", c + 1));
    }

    const auto [previous, inserted] = seen.emplace(field.text, c);
    if (!inserted) {
      const Field& first = header[previous->second];
      scanner.fail(field.location.line, field.location.column,
                   fmt::format("duplicate column name '{}' (also column {} at line {}, column {}). Rename one "
                               "of them",
                               field.text, previous->second + 1, first.location.line, first.location.column));
    }
  }
}

/// Tells whether an unquoted cell is one of the missing-value markers. Quoted cells are literal,
/// so '"NA"' stays text, except that an empty quoted cell is missing when "" is a marker.
class MissingMatcher {
 public:
  explicit MissingMatcher(const std::vector<std::string>& markers) : markers_(markers) {
    for (const std::string& marker : markers_) {
      longest_ = std::max(longest_, marker.size());
      empty_is_missing_ = empty_is_missing_ || marker.empty();
    }
  }

  bool is_missing(const Field& field) const {
    if (field.text.empty()) {
      return empty_is_missing_;
    }
    if (field.quoted || field.text.size() > longest_) {
      return false;
    }
    return std::find(markers_.begin(), markers_.end(), field.text) != markers_.end();
  }

 private:
  const std::vector<std::string>& markers_;
  std::size_t longest_ = 0;
  bool empty_is_missing_ = false;
};

void append_record(Table& table, std::vector<Field>& fields, const MissingMatcher& matcher) {
  std::vector<std::string> cells(fields.size());
  std::vector<std::uint8_t> missing(fields.size());
  std::vector<CellLocation> locations(fields.size());
  for (std::size_t c = 0; c < fields.size(); ++c) {
    missing[c] = matcher.is_missing(fields[c]) ? 1 : 0;
    cells[c] = std::move(fields[c].text);
    locations[c] = fields[c].location;
  }
  table.append_row(std::move(cells), std::move(missing), std::move(locations));
}

[[noreturn]] void fail_ragged(const CsvScanner& scanner, const std::vector<Field>& fields, std::size_t expected,
                              std::uint32_t record_line, std::size_t data_row) {
  // Too many fields points at the first extra one, too few at the start of the record.
  const CellLocation at = fields.size() > expected ? fields[expected].location : CellLocation{record_line, 1};
  scanner.fail(at.line, at.column,
               fmt::format("data row {} (0-based) has {} fields but the header has {} columns. Make every row "
                           "have {} fields, and quote fields that contain the delimiter",
                           data_row, fields.size(), expected, expected));
}

}  // namespace

Table parse_csv(const std::string& text, const std::string& source, const CsvOptions& options) {
  std::string_view body = text;
  if (body.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
    body.remove_prefix(kUtf8Bom.size());
  }
  if (body.empty()) {
    throw ParseError(fmt::format("{}:1:1: the file is empty. A CSV file needs a header line with the column "
                                 "names",
                                 source));
  }

  const char delimiter = options.delimiter ? *options.delimiter : sniff_delimiter(body);
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r') {
    throw InvalidArgument(fmt::format("CSV delimiter {} for {} is not allowed; use ',', ';' or '\\t'",
                                      describe_char(delimiter), source));
  }
  CsvScanner scanner(body, source, delimiter, options.trim_whitespace);

  if (scanner.at_blank_line()) {
    scanner.fail(1, 1, "the header line is empty. Put the column names on the first line");
  }
  std::vector<Field> fields;
  scanner.read_record(fields);
  check_header(fields, scanner);

  Table table;
  table.set_source(source);
  std::vector<std::string> names;
  names.reserve(fields.size());
  for (Field& field : fields) {
    names.push_back(std::move(field.text));
  }
  table.set_column_names(std::move(names));
  table.reserve_rows(static_cast<std::size_t>(std::count(body.begin(), body.end(), '\n')));

  // NOTE: blank lines are skipped anywhere, like pandas.read_csv's default skip_blank_lines=True, so a one-column file cannot express
  // a missing value as an empty line. Write a marker such as NA instead.
  const MissingMatcher matcher(options.missing_markers);
  // Data rows count from 0, the index that Table, `predict`, `explain --rows` and the report use.
  std::size_t data_row = 0;
  while (!scanner.at_end()) {
    if (scanner.at_blank_line()) {
      scanner.skip_line();
      continue;
    }

    const std::uint32_t record_line = scanner.line();
    scanner.read_record(fields);
    if (fields.size() != table.columns()) {
      fail_ragged(scanner, fields, table.columns(), record_line, data_row);
    }
    ++data_row;
    append_record(table, fields, matcher);
  }
  return table;
}

Table read_csv(const std::string& path, const CsvOptions& options) {
  return parse_csv(read_file(path), path, options);
}

}  // namespace lepton
