#include "lepton/error.hpp"

#include <string>
#include <utility>
#include <vector>

namespace lepton {
namespace {

// One line per problem: "<source>: <path>: <message> (got <value>)". A missing key has no value,
// so its line ends after the message.
std::string format_problems(const std::string& source, const std::vector<ValidationProblem>& problems) {
  std::string text;
  for (const ValidationProblem& problem : problems) {
    if (!text.empty()) {
      text += '\n';
    }
    text += source + ": " + problem.path + ": " + problem.message;
    if (!problem.value.empty()) {
      text += " (got " + problem.value + ")";
    }
  }

  if (problems.empty()) {
    text = source + ": validation failed without a recorded problem";
  }
  return text;
}

}  // namespace

ValidationError::ValidationError(std::string source, std::vector<ValidationProblem> problems)
    : InvalidArgument(format_problems(source, problems)),
      source_(std::move(source)),
      problems_(std::move(problems)) {}

}  // namespace lepton
