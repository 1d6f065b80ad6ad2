#pragma once
/// Encryption at rest and signatures for model files and checkpoints, with libsodium.
///
/// A protected file is the plain bytes wrapped in up to two envelopes, each with its own 8-byte magic:
///  - "LEPTONEC": XChaCha20-Poly1305 (IETF AEAD). Layout: magic, u32 version 1, u32 0, 24-byte random
///    nonce, ciphertext with its 16-byte tag. The 40 header bytes are the associated data, so a change to
///    any byte of the file fails authentication.
///  - "LEPTONSG": Ed25519. Layout: magic, u32 version 1, u32 0, 32-byte signer public key, 64-byte
///    signature over the first 48 bytes followed by the content. The content is the plain or encrypted file.
/// Saving encrypts first and signs the result, so that a signature can be checked without the key.
/// docs/model-format.md and docs/privacy.md describe the guarantees and their limits.

#include <array>
#include <cstddef>
#include <optional>
#include <string>

namespace lepton {

/// Environment variable that contains the model encryption key as 64 hex digits.
inline constexpr const char* kModelKeyVariable = "LEPTON_MODEL_KEY";
/// Environment variable that names a file with the model encryption key; used when LEPTON_MODEL_KEY is unset.
inline constexpr const char* kModelKeyFileVariable = "LEPTON_MODEL_KEY_FILE";
/// Environment variable that names a file with the Ed25519 signing key seed for saved models.
inline constexpr const char* kSigningKeyFileVariable = "LEPTON_SIGNING_KEY_FILE";
/// Environment variable that names a file with the trusted Ed25519 public key; set, loads require a signature.
inline constexpr const char* kTrustedKeyFileVariable = "LEPTON_TRUSTED_KEY_FILE";

/// A 32-byte XChaCha20-Poly1305 key. Copies are independent, and every copy is wiped when destroyed.
class EncryptionKey {
 public:
  static constexpr std::size_t kBytes = 32;

  /// A fresh random key from libsodium's CSPRNG.
  static EncryptionKey generate();
  /// Parses 64 hex digits; spaces and line ends around them are ignored. `source` names the text in errors.
  /// Throws InvalidArgument without echoing the text.
  static EncryptionKey from_hex(const std::string& hex, const std::string& source);
  /// Reads a key file holding 64 hex digits (a trailing line end is fine) or exactly 32 raw bytes.
  /// Throws FileNotFound, IoError or InvalidArgument.
  static EncryptionKey from_file(const std::string& path);
  /// The key in environment variable `name` as hex, or std::nullopt when it is unset or empty.
  static std::optional<EncryptionKey> from_environment(const std::string& name = kModelKeyVariable);

  std::string to_hex() const;
  const unsigned char* data() const noexcept { return bytes_.data(); }

  EncryptionKey(const EncryptionKey&) = default;
  EncryptionKey& operator=(const EncryptionKey&) = default;
  ~EncryptionKey();

 private:
  EncryptionKey() = default;
  std::array<unsigned char, kBytes> bytes_{};
};

/// An Ed25519 public key: the identity that a loader trusts.
class PublicKey {
 public:
  static constexpr std::size_t kBytes = 32;

  /// Parses 64 hex digits. Throws InvalidArgument.
  static PublicKey from_hex(const std::string& hex, const std::string& source);
  /// Reads a file of 64 hex digits or exactly 32 raw bytes.
  static PublicKey from_file(const std::string& path);
  static PublicKey from_bytes(const unsigned char* bytes);

  std::string to_hex() const;
  const unsigned char* data() const noexcept { return bytes_.data(); }
  bool operator==(const PublicKey& other) const noexcept { return bytes_ == other.bytes_; }

 private:
  PublicKey() = default;
  std::array<unsigned char, kBytes> bytes_{};
};

/// An Ed25519 signing key, derived from a 32-byte seed. Wiped when destroyed.
class SigningKey {
 public:
  static constexpr std::size_t kSeedBytes = 32;

  static SigningKey generate();
  /// Derives the key pair from a seed of 64 hex digits. Throws InvalidArgument.
  static SigningKey from_seed_hex(const std::string& hex, const std::string& source);
  /// Reads a file of 64 hex digits (the seed) or exactly 32 raw bytes.
  static SigningKey from_file(const std::string& path);

  /// The seed as 64 hex digits, the format from_file reads.
  std::string seed_hex() const;
  const PublicKey& public_key() const noexcept { return public_key_; }
  const unsigned char* secret() const noexcept { return secret_.data(); }

  SigningKey(const SigningKey&) = default;
  SigningKey& operator=(const SigningKey&) = default;
  ~SigningKey();

 private:
  SigningKey();
  std::array<unsigned char, 64> secret_{};  // libsodium's secret key: seed followed by the public key.
  PublicKey public_key_;
};

/// Whether `bytes` start with the magic of an encrypted or a signed envelope.
bool is_encrypted(const std::string& bytes);
bool is_signed(const std::string& bytes);

/// Wraps `plain` in an encrypted envelope with a fresh random nonce.
std::string encrypt_bytes(const std::string& plain, const EncryptionKey& key);

/// Opens an encrypted envelope. Throws ParseError naming `source` when the bytes are no envelope, are
/// truncated, or fail authentication (a wrong key, or any changed byte). Never returns unauthenticated bytes.
std::string decrypt_bytes(const std::string& sealed, const EncryptionKey& key, const std::string& source);

/// Wraps `content` in a signed envelope.
std::string sign_bytes(const std::string& content, const SigningKey& key);

/// Checks a signed envelope and returns its content and the signer. With `trusted` set, the signer must be
/// that key. Throws ParseError naming `source` for a truncated envelope, an invalid signature, or an
/// untrusted signer.
struct VerifiedContent {
  std::string content;
  PublicKey signer;
};
VerifiedContent verify_bytes(const std::string& signed_bytes, const std::optional<PublicKey>& trusted,
                             const std::string& source);

/// Protection that save_artifact applies to the file it writes. Chainable setters return *this.
struct SaveOptions {
  std::optional<EncryptionKey> key;          ///< Set: encrypt.
  std::optional<SigningKey> signing_key;     ///< Set: sign (after encrypting).

  SaveOptions& with_key(EncryptionKey k) { key = std::move(k); return *this; }
  SaveOptions& with_signing_key(SigningKey k) { signing_key = std::move(k); return *this; }

  /// The key from LEPTON_MODEL_KEY or the file named by LEPTON_MODEL_KEY_FILE, and the signing key from
  /// the file named by LEPTON_SIGNING_KEY_FILE; each unset variable leaves its option unset.
  static SaveOptions from_environment();
};

/// Requirements that load_artifact enforces. Chainable setters return *this.
struct LoadOptions {
  std::optional<EncryptionKey> key;          ///< Needed for encrypted files.
  /// Set: the file must carry a valid signature by this key; unsigned files are rejected.
  std::optional<PublicKey> trusted_key;

  LoadOptions& with_key(EncryptionKey k) { key = std::move(k); return *this; }
  LoadOptions& with_trusted_key(PublicKey k) { trusted_key = std::move(k); return *this; }

  /// The key from LEPTON_MODEL_KEY or the file named by LEPTON_MODEL_KEY_FILE, and the trusted key from the
  /// file named by LEPTON_TRUSTED_KEY_FILE; each unset variable leaves its option unset.
  static LoadOptions from_environment();
};

/// Applies the envelopes of `options` to `plain`: encryption, then signature.
std::string protect_bytes(const std::string& plain, const SaveOptions& options);

/// Removes the envelopes of a protected file and returns the plain bytes. Throws ParseError when a signature
/// is required but missing, invalid or untrusted, when the file is encrypted and no key is given, or when
/// decryption fails. Plain bytes without envelopes are returned unchanged unless a signature is required.
std::string unprotect_bytes(const std::string& bytes, const LoadOptions& options, const std::string& source);

}  // namespace lepton
