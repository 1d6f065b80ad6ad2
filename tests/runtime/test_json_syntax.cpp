// The shared wording of JSON syntax errors (src/runtime/json_syntax.hpp): nlohmann's exception id and
// repeated position are stripped, the reason is kept, and an unknown message shape stays whole.
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runtime/json_syntax.hpp"

using Catch::Matchers::Contains;
using lepton::detail::json_error_position;
using lepton::detail::json_syntax_error;
using lepton::detail::json_syntax_reason;

namespace {

// The parse_error that nlohmann throws for `text`. FAILs when the text parses.
nlohmann::json::parse_error parse_error_of(const std::string& text) {
  try {
    const nlohmann::json parsed = nlohmann::json::parse(text);
    FAIL("the text parsed as " << parsed.dump());
  } catch (const nlohmann::json::parse_error& error) {
    return error;
  }
  throw std::logic_error("unreachable: FAIL throws");
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

}  // namespace

// Golden messages: what() of the parse_error that nlohmann::json 3.11.2 (Debian nlohmann-json3-dev 3.11.2-2)
// throws for each text, as nlohmann::json::parse printed them. The first checks pin that version's wording.
TEST_CASE("json syntax reason of nlohmann messages", "[json][requirements][artifact]") {
  const std::string object_key = parse_error_of("{\n  \"version\": 1,, \"task\": \"x\"}").what();
  CHECK(object_key ==
        "[json.exception.parse_error.101] parse error at line 2, column 16: syntax error while parsing object key - "
        "unexpected ','; expected string literal");
  CHECK(json_syntax_reason(object_key) == "unexpected ','; expected string literal");

  const std::string value = parse_error_of("{\"a\": tru}").what();
  CHECK(value ==
        "[json.exception.parse_error.101] parse error at line 1, column 10: syntax error while parsing value - "
        "invalid literal; last read: '\"a\": tru}'");
  CHECK(json_syntax_reason(value) == "invalid literal; last read: '\"a\": tru}'");

  // A made-up shape: a byte position and no parsing context.
  CHECK(json_syntax_reason("[json.exception.parse_error.101] parse error at 7: syntax error - unexpected end") ==
        "unexpected end");
}

TEST_CASE("json syntax reason of real parse errors", "[json][requirements][artifact]") {
  for (const std::string text : {"{\"a\": 1,, \"b\": 2}", "{\"task\": ", "{\"a\": tru}", "[1, 2", "{\"a\": \"x\n\"}",
                                 "", "{\"a\" 1}", "nul"}) {
    INFO("text: " << text);
    const std::string message = parse_error_of(text).what();
    const std::string reason = json_syntax_reason(message);
    CHECK_FALSE(reason.empty());
    CHECK_THAT(reason, !Contains("json.exception"));
    CHECK_THAT(reason, !Contains("parse error"));
    CHECK_THAT(reason, !Contains("syntax error"));
    CHECK_THAT(reason, !Contains("line "));
    CHECK_THAT(message, Contains(reason));
  }
}

TEST_CASE("json syntax reason keeps unknown shapes", "[json][requirements][artifact]") {
  // Nothing to strip: the text comes back as it is.
  CHECK(json_syntax_reason("unexpected ','") == "unexpected ','");
  // A lead that only resembles nlohmann's stays.
  CHECK(json_syntax_reason("[json.exception] parse error near x") == "[json.exception] parse error near x");
  // Only the id matches, so the rest is kept.
  CHECK(json_syntax_reason("[json.exception.parse_error.113] something new") == "something new");
  // Stripping would leave nothing, so the whole message stays.
  CHECK(json_syntax_reason("[json.exception.parse_error.101] parse error: ") ==
        "[json.exception.parse_error.101] parse error: ");
  CHECK(json_syntax_reason("").empty());
}

TEST_CASE("json error position counts bytes", "[json][requirements]") {
  const std::string text = "{\r\n  \"a\": 1,\r\n  ,\r\n}";

  // parse_error::byte counts the characters read, so byte 0 and byte 1 both mean the first character.
  CHECK(json_error_position(text, 0).line == 1);
  CHECK(json_error_position(text, 0).column == 1);
  CHECK(json_error_position(text, 1).column == 1);

  // Byte 17 is the ',' on line 3 (index 16), because a '\r' counts as a column of its line.
  const lepton::detail::TextPosition comma = json_error_position(text, 17);
  CHECK(comma.line == 3);
  CHECK(comma.column == 3);

  // A byte past the end stops at the end of the text.
  const lepton::detail::TextPosition past = json_error_position(text, 1000);
  CHECK(past.line == 4);
  CHECK(past.column == 2);
}

TEST_CASE("json syntax error names the place once", "[json][requirements]") {
  const std::string text = "{\n  \"version\": 1,, \"task\": \"x\"}\n";
  const lepton::ParseError error = json_syntax_error(parse_error_of(text), text, "/tmp/bad.json", "fix it there");
  const std::string message = error.what();

  // Column 16 of line 2 is the second ','.
  CHECK(message == "/tmp/bad.json:2:16: JSON syntax error: unexpected ','; expected string literal; fix it there");
  CHECK(count_of(message, ":2:16") == 1);
  CHECK_THAT(message, !Contains("json.exception"));
  CHECK_THAT(message, !Contains("line 2"));
}
