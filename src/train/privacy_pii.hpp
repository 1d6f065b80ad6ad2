#pragma once
// Removes personal data from a table before any other stage reads it.

#include <optional>
#include <string>

#include "lepton/crypto.hpp"
#include "lepton/requirements.hpp"
#include "lepton/table.hpp"

namespace lepton::detail {

/// Environment variable with the PII hashing key as 64 hex digits, and the one that names a key file.
inline constexpr const char* kPiiKeyVariable = "LEPTON_PII_KEY";
inline constexpr const char* kPiiKeyFileVariable = "LEPTON_PII_KEY_FILE";

/// The PII hashing key from LEPTON_PII_KEY or the file named by LEPTON_PII_KEY_FILE, or std::nullopt.
std::optional<EncryptionKey> pii_key_from_environment();

/// Keyed BLAKE2b-256 of `value` as 64 hex digits. Without the key, equal hashes reveal only that values are
/// equal; a dictionary attack needs the key.
std::string pii_hash(const std::string& value, const EncryptionKey& key);

/// Returns `table` with every column of `requirements.pii` dropped or, for PiiHandling::Hash, with each
/// present value replaced by pii_hash (missing cells stay missing). Cell locations are not kept. Throws
/// InvalidArgument naming the column (never a value) when a pii column is missing from the table, and when
/// hashing is requested without a key.
Table mask_pii(const Table& table, const Requirements& requirements, const std::optional<EncryptionKey>& key);

}  // namespace lepton::detail
