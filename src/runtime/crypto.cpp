// Envelopes for encryption at rest (XChaCha20-Poly1305) and signatures (Ed25519) over libsodium.
// The byte layouts are described in include/lepton/crypto.hpp.
#include "lepton/crypto.hpp"

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <sodium.h>

#include "lepton/error.hpp"
#include "lepton/io.hpp"

namespace lepton {

namespace {

constexpr char kEncryptedMagic[8] = {'L', 'E', 'P', 'T', 'O', 'N', 'E', 'C'};
constexpr char kSignedMagic[8] = {'L', 'E', 'P', 'T', 'O', 'N', 'S', 'G'};
constexpr std::uint32_t kEnvelopeVersion = 1;

constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kEncryptedHeaderBytes = 16 + kNonceBytes;
constexpr std::size_t kSignatureBytes = crypto_sign_BYTES;
constexpr std::size_t kSignedPrefixBytes = 16 + crypto_sign_PUBLICKEYBYTES;  // The signed part of the header.
constexpr std::size_t kSignedHeaderBytes = kSignedPrefixBytes + kSignatureBytes;

static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == EncryptionKey::kBytes);
static_assert(crypto_sign_PUBLICKEYBYTES == PublicKey::kBytes);
static_assert(crypto_sign_SEEDBYTES == SigningKey::kSeedBytes);
static_assert(crypto_sign_SECRETKEYBYTES == 64);

void ensure_sodium() {
  static const int status = sodium_init();
  if (status < 0) {
    throw InternalError("libsodium: sodium_init() failed, so keys, encryption and signatures are unavailable");
  }
}

const unsigned char* bytes_of(const std::string& text) { return reinterpret_cast<const unsigned char*>(text.data()); }

void put_u32(std::string& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

std::uint32_t get_u32(const std::string& in, std::size_t at) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return value;
}

std::string envelope_header(const char (&magic)[8], std::size_t size) {
  std::string header(size, '\0');
  std::memcpy(header.data(), magic, sizeof magic);
  put_u32(header, 8, kEnvelopeVersion);
  return header;
}

void check_envelope_version(const std::string& bytes, const char* kind, const std::string& source) {
  const std::uint32_t version = get_u32(bytes, 8);
  if (version != kEnvelopeVersion) {
    throw ParseError(fmt::format("{}: {} envelope version is {}, this build reads version {}; upgrade Lepton or "
                                 "re-export the model (byte offset 8)",
                                 source, kind, version, kEnvelopeVersion));
  }
}

bool starts_with(const std::string& bytes, const char (&magic)[8]) {
  return bytes.size() >= sizeof magic && std::memcmp(bytes.data(), magic, sizeof magic) == 0;
}

// Decodes exactly N bytes of hex after trimming whitespace. Messages never contain the text, because
// it is a secret.
template <std::size_t N>
void decode_hex(const std::string& text, std::array<unsigned char, N>& out, const char* what,
                const std::string& source) {
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  const std::size_t last = text.find_last_not_of(" \t\r\n");
  const std::string trimmed = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);

  std::size_t decoded = 0;
  const int status = sodium_hex2bin(out.data(), out.size(), trimmed.data(), trimmed.size(), nullptr, &decoded,
                                    nullptr);
  if (status != 0 || decoded != N || trimmed.size() != 2 * N) {
    sodium_memzero(out.data(), out.size());
    throw InvalidArgument(fmt::format("{}: the {} is not {} hex digits ({} characters after trimming); write it "
                                      "as {} hex digits, for example from `head -c {} /dev/urandom | xxd -p -c {}`",
                                      source, what, 2 * N, trimmed.size(), 2 * N, N, N));
  }
}

template <std::size_t N>
std::string encode_hex(const std::array<unsigned char, N>& bytes) {
  std::string hex(2 * N + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes.data(), N);
  hex.pop_back();
  return hex;
}

// Reads a key file of 2N hex digits or exactly N raw bytes, wiping the file contents afterwards.
template <std::size_t N>
void read_key_file(const std::string& path, std::array<unsigned char, N>& out, const char* what) {
  std::string text = read_file(path);
  if (text.size() == N) {
    std::memcpy(out.data(), text.data(), N);
  } else {
    try {
      decode_hex(text, out, what, path);
    } catch (...) {
      sodium_memzero(text.data(), text.size());
      throw;
    }
  }
  sodium_memzero(text.data(), text.size());
}

}  // namespace

// ---- EncryptionKey

EncryptionKey EncryptionKey::generate() {
  ensure_sodium();
  EncryptionKey key;
  crypto_aead_xchacha20poly1305_ietf_keygen(key.bytes_.data());
  return key;
}

EncryptionKey EncryptionKey::from_hex(const std::string& hex, const std::string& source) {
  EncryptionKey key;
  decode_hex(hex, key.bytes_, "encryption key", source);
  return key;
}

EncryptionKey EncryptionKey::from_file(const std::string& path) {
  EncryptionKey key;
  read_key_file(path, key.bytes_, "encryption key");
  return key;
}

std::optional<EncryptionKey> EncryptionKey::from_environment(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return from_hex(value, fmt::format("environment variable {}", name));
}

std::string EncryptionKey::to_hex() const { return encode_hex(bytes_); }

EncryptionKey::~EncryptionKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

// ---- PublicKey

PublicKey PublicKey::from_hex(const std::string& hex, const std::string& source) {
  PublicKey key;
  decode_hex(hex, key.bytes_, "Ed25519 public key", source);
  return key;
}

PublicKey PublicKey::from_file(const std::string& path) {
  PublicKey key;
  read_key_file(path, key.bytes_, "Ed25519 public key");
  return key;
}

PublicKey PublicKey::from_bytes(const unsigned char* bytes) {
  PublicKey key;
  std::memcpy(key.bytes_.data(), bytes, kBytes);
  return key;
}

std::string PublicKey::to_hex() const { return encode_hex(bytes_); }

// ---- SigningKey

SigningKey::SigningKey() : public_key_(PublicKey::from_bytes(secret_.data())) {}

SigningKey SigningKey::generate() {
  ensure_sodium();
  std::array<unsigned char, kSeedBytes> seed{};
  randombytes_buf(seed.data(), seed.size());
  SigningKey key = from_seed_hex(encode_hex(seed), "<generated>");
  sodium_memzero(seed.data(), seed.size());
  return key;
}

SigningKey SigningKey::from_seed_hex(const std::string& hex, const std::string& source) {
  ensure_sodium();
  std::array<unsigned char, kSeedBytes> seed{};
  decode_hex(hex, seed, "Ed25519 signing key seed", source);

  SigningKey key;
  std::array<unsigned char, PublicKey::kBytes> public_bytes{};
  crypto_sign_seed_keypair(public_bytes.data(), key.secret_.data(), seed.data());
  key.public_key_ = PublicKey::from_bytes(public_bytes.data());
  sodium_memzero(seed.data(), seed.size());
  return key;
}

SigningKey SigningKey::from_file(const std::string& path) {
  std::array<unsigned char, kSeedBytes> seed{};
  read_key_file(path, seed, "Ed25519 signing key seed");
  std::string hex = encode_hex(seed);
  sodium_memzero(seed.data(), seed.size());
  SigningKey key = from_seed_hex(hex, path);
  sodium_memzero(hex.data(), hex.size());
  return key;
}

std::string SigningKey::seed_hex() const {
  std::array<unsigned char, kSeedBytes> seed{};
  crypto_sign_ed25519_sk_to_seed(seed.data(), secret_.data());
  std::string hex = encode_hex(seed);
  sodium_memzero(seed.data(), seed.size());
  return hex;
}

SigningKey::~SigningKey() { sodium_memzero(secret_.data(), secret_.size()); }

// ---- Envelopes

bool is_encrypted(const std::string& bytes) { return starts_with(bytes, kEncryptedMagic); }

bool is_signed(const std::string& bytes) { return starts_with(bytes, kSignedMagic); }

std::string encrypt_bytes(const std::string& plain, const EncryptionKey& key) {
  ensure_sodium();
  std::string sealed = envelope_header(kEncryptedMagic, kEncryptedHeaderBytes);
  randombytes_buf(sealed.data() + 16, kNonceBytes);

  sealed.resize(kEncryptedHeaderBytes + plain.size() + kTagBytes);
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + kEncryptedHeaderBytes, &written, bytes_of(plain), plain.size(),
                                             out, kEncryptedHeaderBytes, nullptr, out + 16, key.data());
  sealed.resize(kEncryptedHeaderBytes + written);
  return sealed;
}

std::string decrypt_bytes(const std::string& sealed, const EncryptionKey& key, const std::string& source) {
  ensure_sodium();
  if (!is_encrypted(sealed)) {
    throw ParseError(fmt::format("{}: not an encrypted Lepton file: the first bytes are not \"LEPTONEC\" (byte "
                                 "offset 0)",
                                 source));
  }
  if (sealed.size() < kEncryptedHeaderBytes + kTagBytes) {
    throw ParseError(fmt::format("{}: the encrypted file is {} bytes, shorter than the {}-byte header and tag, so "
                                 "it is truncated; copy the file again",
                                 source, sealed.size(), kEncryptedHeaderBytes + kTagBytes));
  }
  check_envelope_version(sealed, "encryption", source);

  std::string plain(sealed.size() - kEncryptedHeaderBytes - kTagBytes, '\0');
  const auto* in = bytes_of(sealed);
  unsigned long long written = 0;
  const int status = crypto_aead_xchacha20poly1305_ietf_decrypt(
      reinterpret_cast<unsigned char*>(plain.data()), &written, nullptr, in + kEncryptedHeaderBytes,
      sealed.size() - kEncryptedHeaderBytes, in, kEncryptedHeaderBytes, in + 16, key.data());
  if (status != 0) {
    throw ParseError(fmt::format("{}: decryption failed: the key is wrong, or the file was modified or truncated "
                                 "after it was written; check the key (key file or {}) and copy the file again",
                                 source, kModelKeyVariable));
  }
  plain.resize(written);
  return plain;
}

std::string sign_bytes(const std::string& content, const SigningKey& key) {
  ensure_sodium();
  std::string signed_bytes = envelope_header(kSignedMagic, kSignedHeaderBytes);
  std::memcpy(signed_bytes.data() + 16, key.public_key().data(), PublicKey::kBytes);
  signed_bytes += content;

  // The signature covers the signed part of the header and the content, read in one pass.
  const std::string message = signed_bytes.substr(0, kSignedPrefixBytes) + content;
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signed_bytes.data() + kSignedPrefixBytes), nullptr,
                       bytes_of(message), message.size(), key.secret());
  return signed_bytes;
}

VerifiedContent verify_bytes(const std::string& signed_bytes, const std::optional<PublicKey>& trusted,
                             const std::string& source) {
  ensure_sodium();
  if (!is_signed(signed_bytes)) {
    throw ParseError(fmt::format("{}: the file is not signed (no \"LEPTONSG\" envelope at byte offset 0), but a "
                                 "signature is required; sign it when saving, or load it without a trusted key",
                                 source));
  }
  if (signed_bytes.size() < kSignedHeaderBytes) {
    throw ParseError(fmt::format("{}: the signed file is {} bytes, shorter than its {}-byte header, so it is "
                                 "truncated; copy the file again",
                                 source, signed_bytes.size(), kSignedHeaderBytes));
  }
  check_envelope_version(signed_bytes, "signature", source);

  const PublicKey signer = PublicKey::from_bytes(bytes_of(signed_bytes) + 16);
  if (trusted && !(signer == *trusted)) {
    throw ParseError(fmt::format("{}: the file is signed by key {}, which is not the trusted key {}; load it only "
                                 "if you trust that signer",
                                 source, signer.to_hex(), trusted->to_hex()));
  }

  std::string content = signed_bytes.substr(kSignedHeaderBytes);
  const std::string message = signed_bytes.substr(0, kSignedPrefixBytes) + content;
  const int status = crypto_sign_verify_detached(bytes_of(signed_bytes) + kSignedPrefixBytes, bytes_of(message),
                                                 message.size(), signer.data());
  if (status != 0) {
    throw ParseError(fmt::format("{}: the Ed25519 signature is invalid: the file was modified or truncated after "
                                 "it was signed; do not load it, and copy the original file again",
                                 source));
  }
  return {std::move(content), signer};
}

namespace {

// The value of an environment variable, or std::nullopt when it is unset or empty.
std::optional<std::string> environment_value(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return std::string(value);
}

std::optional<EncryptionKey> model_key_from_environment() {
  if (auto key = EncryptionKey::from_environment(kModelKeyVariable)) {
    return key;
  }
  if (const auto path = environment_value(kModelKeyFileVariable)) {
    return EncryptionKey::from_file(*path);
  }
  return std::nullopt;
}

}  // namespace

SaveOptions SaveOptions::from_environment() {
  SaveOptions options;
  options.key = model_key_from_environment();
  if (const auto path = environment_value(kSigningKeyFileVariable)) {
    options.signing_key = SigningKey::from_file(*path);
  }
  return options;
}

LoadOptions LoadOptions::from_environment() {
  LoadOptions options;
  options.key = model_key_from_environment();
  if (const auto path = environment_value(kTrustedKeyFileVariable)) {
    options.trusted_key = PublicKey::from_file(*path);
  }
  return options;
}

std::string protect_bytes(const std::string& plain, const SaveOptions& options) {
  std::string bytes = options.key ? encrypt_bytes(plain, *options.key) : plain;
  if (options.signing_key) {
    bytes = sign_bytes(bytes, *options.signing_key);
  }
  return bytes;
}

std::string unprotect_bytes(const std::string& bytes, const LoadOptions& options, const std::string& source) {
  std::string content;
  if (is_signed(bytes)) {
    content = verify_bytes(bytes, options.trusted_key, source).content;
  } else if (options.trusted_key) {
    verify_bytes(bytes, options.trusted_key, source);  // Throws: a signature is required but missing.
  } else {
    content = bytes;
  }

  if (!is_encrypted(content)) {
    return content;
  }
  if (!options.key) {
    throw ParseError(fmt::format("{}: the file is encrypted, but no key was given; pass the key with --key-file or "
                                 "the {} environment variable (LoadOptions::key in the API)",
                                 source, kModelKeyVariable));
  }
  return decrypt_bytes(content, *options.key, source);
}

}  // namespace lepton
