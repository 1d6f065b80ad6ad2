#include "runtime/json_syntax.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

#include <fmt/format.h>

namespace lepton::detail {
namespace {

// Removes the match of `lead` at the start of `text` and returns true, or leaves `text` as it is.
bool strip_lead(std::string& text, const std::regex& lead) {
  std::smatch match;
  if (!std::regex_search(text, match, lead, std::regex_constants::match_continuous)) {
    return false;
  }
  text = match.suffix().str();
  return true;
}

}  // namespace

TextPosition json_error_position(std::string_view text, std::size_t error_byte) {
  const std::size_t offset = std::min(error_byte == 0 ? 0 : error_byte - 1, text.size());
  TextPosition position;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++position.line;
      position.column = 1;
    } else {
      ++position.column;
    }
  }
  return position;
}

std::string json_syntax_reason(std::string_view message) {
  // The leads as nlohmann 3.x writes them (parse_error::create and the parser's exception_message). They
  // are matched loosely, so a reworded position or context still goes, and an unknown shape stays whole.
  static const std::regex exception_id(R"(\s*\[json\.exception\.[A-Za-z_]+\.[0-9]+\]\s*)");
  static const std::regex position(R"(parse error(\s+at\s+[^:]*)?:\s*)");
  static const std::regex context(R"(syntax error(\s+while parsing\s+[^-]*)?\s*-\s*)");

  std::string reason(message);
  strip_lead(reason, exception_id);
  strip_lead(reason, position);
  strip_lead(reason, context);

  const bool blank = std::all_of(reason.begin(), reason.end(), [](unsigned char c) { return std::isspace(c); });
  return blank ? std::string(message) : reason;
}

ParseError json_syntax_error(const nlohmann::json::parse_error& error, std::string_view text,
                             std::string_view source, std::string_view fix) {
  const TextPosition position = json_error_position(text, error.byte);
  return ParseError(fmt::format("{}:{}:{}: JSON syntax error: {}; {}", source, position.line, position.column,
                                json_syntax_reason(error.what()), fix));
}

}  // namespace lepton::detail
