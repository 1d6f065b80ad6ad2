#pragma once
// Text helpers shared by the table, CSV, dataset and preprocessing code. Not installed.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lepton {
struct FeatureTransform;
}  // namespace lepton

namespace lepton::detail {

/// Removes spaces and tabs at both ends.
std::string_view trim_blanks(std::string_view text);

/// Levenshtein edit distance (insert, delete, substitute; each costs 1), over bytes.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// Returns the candidate closest to `name` when it is close enough to be a likely typo, else an empty string.
/// Close enough: a case-insensitive match, or an edit distance of at most max(2, length / 3).
std::string closest_name(std::string_view name, const std::vector<std::string>& candidates);

/// Writes the standardized token shares of `text` into encoded[feature.offset, feature.offset + feature.width),
/// as a fitted text feature encodes one cell. An empty text is a missing cell.
void encode_text_cell(const FeatureTransform& feature, std::string_view text, float* encoded);

/// Joins names as "'a', 'b', 'c'" for error messages.
std::string quoted_list(const std::vector<std::string>& names);

}  // namespace lepton::detail
