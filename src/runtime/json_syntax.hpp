#pragma once
// One wording for JSON syntax errors in text that a user gave: requirements files, model headers and
// documents passed as strings to the Python bindings. Not installed.

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lepton/error.hpp"

namespace lepton::detail {

/// Line and column of a byte in a text, both counted from 1.
struct TextPosition {
  std::size_t line = 1;
  std::size_t column = 1;
};

/// Returns the position of the last character that nlohmann read before it threw: parse_error::byte counts
/// the characters read, so that character sits at byte - 1. Columns count bytes, and a '\r' before '\n'
/// counts as a column of its line.
TextPosition json_error_position(std::string_view text, std::size_t error_byte);

/// Returns the reason of nlohmann's parse_error message, e.g. "unexpected ','; expected string literal",
/// without the exception id "[json.exception.parse_error.101]", the "parse error at line L, column C:" lead
/// and the "syntax error while parsing <context> -" lead. A part whose pattern is absent is kept, and the
/// whole message is returned when nothing would be left.
std::string json_syntax_reason(std::string_view message);

/// Builds the ParseError "<source>:<line>:<column>: JSON syntax error: <reason>; <fix>" for `text`, the JSON
/// that failed to parse with `error`. `fix` is the user's next step, such as "fix the JSON syntax there".
ParseError json_syntax_error(const nlohmann::json::parse_error& error, std::string_view text,
                             std::string_view source, std::string_view fix);

}  // namespace lepton::detail
