// Encryption at rest and signatures: round trips, and a clear ParseError for every wrong key, changed byte,
// truncation, missing key and untrusted or missing signature.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "lepton/crypto.hpp"
#include "lepton/error.hpp"
#include "lepton/io.hpp"
#include "lepton/model.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kGoldenModel = LEPTON_SOURCE_DIR "/tests/golden/model_v1.lepton";

fs::path scratch_folder(const std::string& name) {
  const fs::path folder = fs::path(LEPTON_BINARY_DIR) / "test_crypto" / name;
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder;
}

// Offsets that cover the envelope header, the nonce, the body and the tag of an encrypted file.
std::vector<std::size_t> probe_offsets(std::size_t size) {
  return {0, 7, 8, 12, 16, 39, 40, 41, size / 2, size - 17, size - 16, size - 1};
}

}  // namespace

TEST_CASE("encryption round trip", "[crypto]") {
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  const std::string plain = lepton::read_file(kGoldenModel);

  const std::string sealed = lepton::encrypt_bytes(plain, key);
  CHECK(lepton::is_encrypted(sealed));
  CHECK(sealed.find(plain.substr(0, 64)) == std::string::npos);
  CHECK(lepton::decrypt_bytes(sealed, key, "sealed") == plain);
}

TEST_CASE("encryption uses a fresh nonce", "[crypto]") {
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  CHECK(lepton::encrypt_bytes("same text", key) != lepton::encrypt_bytes("same text", key));
}

TEST_CASE("empty plaintext round trip", "[crypto]") {
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  CHECK(lepton::decrypt_bytes(lepton::encrypt_bytes("", key), key, "empty").empty());
}

TEST_CASE("wrong key is rejected", "[crypto]") {
  const std::string sealed = lepton::encrypt_bytes("model bytes", lepton::EncryptionKey::generate());
  const lepton::EncryptionKey other = lepton::EncryptionKey::generate();

  CHECK_THROWS_AS(lepton::decrypt_bytes(sealed, other, "model.lepton"), lepton::ParseError);
  CHECK_THROWS_WITH(lepton::decrypt_bytes(sealed, other, "model.lepton"),
                    Catch::Contains("model.lepton") && Catch::Contains("key is wrong"));
}

TEST_CASE("every changed byte is rejected", "[crypto]") {
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  const std::string sealed = lepton::encrypt_bytes(lepton::read_file(kGoldenModel), key);

  for (std::size_t offset : probe_offsets(sealed.size())) {
    std::string tampered = sealed;
    tampered[offset] = static_cast<char>(tampered[offset] ^ 0x01);
    INFO("flipped byte " << offset);
    CHECK_THROWS_AS(lepton::decrypt_bytes(tampered, key, "tampered"), lepton::ParseError);
  }
}

TEST_CASE("every truncation is rejected", "[crypto]") {
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  const std::string sealed = lepton::encrypt_bytes(lepton::read_file(kGoldenModel), key);

  for (std::size_t length : {std::size_t{0}, std::size_t{4}, std::size_t{8}, std::size_t{40}, std::size_t{55},
                             std::size_t{56}, sealed.size() / 2, sealed.size() - 1}) {
    INFO("truncated to " << length << " bytes");
    CHECK_THROWS_AS(lepton::decrypt_bytes(sealed.substr(0, length), key, "truncated"), lepton::ParseError);
  }
}

TEST_CASE("signature round trip", "[crypto]") {
  const lepton::SigningKey signer = lepton::SigningKey::generate();
  const std::string content = lepton::read_file(kGoldenModel);

  const std::string signed_bytes = lepton::sign_bytes(content, signer);
  CHECK(lepton::is_signed(signed_bytes));
  const lepton::VerifiedContent verified = lepton::verify_bytes(signed_bytes, signer.public_key(), "signed");
  CHECK(verified.content == content);
  CHECK(verified.signer == signer.public_key());
}

TEST_CASE("signature detects changed bytes", "[crypto]") {
  const lepton::SigningKey signer = lepton::SigningKey::generate();
  const std::string signed_bytes = lepton::sign_bytes(lepton::read_file(kGoldenModel), signer);

  // Byte 16 onwards is the public key: changing it makes the signer untrusted, which is also a ParseError.
  for (std::size_t offset : {std::size_t{9}, std::size_t{16}, std::size_t{50}, std::size_t{111}, std::size_t{112},
                             signed_bytes.size() / 2, signed_bytes.size() - 1}) {
    std::string tampered = signed_bytes;
    tampered[offset] = static_cast<char>(tampered[offset] ^ 0x80);
    INFO("flipped byte " << offset);
    CHECK_THROWS_AS(lepton::verify_bytes(tampered, signer.public_key(), "tampered"), lepton::ParseError);
  }
}

TEST_CASE("signature detects changed bytes without a trusted key", "[crypto]") {
  const lepton::SigningKey signer = lepton::SigningKey::generate();
  std::string tampered = lepton::sign_bytes("content", signer);
  tampered.back() = 'X';
  CHECK_THROWS_WITH(lepton::verify_bytes(tampered, std::nullopt, "signed"), Catch::Contains("signature is invalid"));
}

TEST_CASE("untrusted signer is rejected", "[crypto]") {
  const std::string signed_bytes = lepton::sign_bytes("content", lepton::SigningKey::generate());
  const lepton::SigningKey trusted = lepton::SigningKey::generate();

  CHECK_THROWS_WITH(lepton::verify_bytes(signed_bytes, trusted.public_key(), "signed"),
                    Catch::Contains("not the trusted key"));
}

TEST_CASE("truncated signed file is rejected", "[crypto]") {
  const lepton::SigningKey signer = lepton::SigningKey::generate();
  const std::string signed_bytes = lepton::sign_bytes("content", signer);

  for (std::size_t length : {std::size_t{8}, std::size_t{100}, signed_bytes.size() - 1}) {
    INFO("truncated to " << length << " bytes");
    CHECK_THROWS_AS(lepton::verify_bytes(signed_bytes.substr(0, length), signer.public_key(), "cut"),
                    lepton::ParseError);
  }
}

TEST_CASE("signing key seed round trip", "[crypto]") {
  const lepton::SigningKey signer = lepton::SigningKey::generate();
  const lepton::SigningKey again = lepton::SigningKey::from_seed_hex(signer.seed_hex(), "seed");
  CHECK(again.public_key() == signer.public_key());
}

TEST_CASE("Ed25519 matches the RFC 8032 test vector", "[crypto]") {
  // RFC 8032 section 7.1, TEST 1: secret key seed and its public key.
  const lepton::SigningKey signer = lepton::SigningKey::from_seed_hex(
      "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "RFC 8032");
  CHECK(signer.public_key().to_hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
}

TEST_CASE("key hex is validated without echoing it", "[crypto]") {
  const std::string secret_like = "not-a-key-0123456789";
  CHECK_THROWS_AS(lepton::EncryptionKey::from_hex(secret_like, "test"), lepton::InvalidArgument);
  CHECK_THROWS_WITH(lepton::EncryptionKey::from_hex(secret_like, "test"), !Catch::Contains(secret_like));
  CHECK_THROWS_AS(lepton::EncryptionKey::from_hex(std::string(62, 'a'), "test"), lepton::InvalidArgument);
  CHECK_THROWS_AS(lepton::EncryptionKey::from_hex(std::string(66, 'a'), "test"), lepton::InvalidArgument);
}

TEST_CASE("key hex round trip", "[crypto]") {
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  const lepton::EncryptionKey parsed = lepton::EncryptionKey::from_hex("  " + key.to_hex() + "\r\n", "test");
  CHECK(parsed.to_hex() == key.to_hex());
}

TEST_CASE("key files hold hex or raw bytes", "[crypto]") {
  const fs::path folder = scratch_folder("key_files");
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();

  lepton::write_file_atomically((folder / "hex.key").string(), key.to_hex() + "\n");
  CHECK(lepton::EncryptionKey::from_file((folder / "hex.key").string()).to_hex() == key.to_hex());

  lepton::write_file_atomically((folder / "raw.key").string(),
                                std::string(reinterpret_cast<const char*>(key.data()), 32));
  CHECK(lepton::EncryptionKey::from_file((folder / "raw.key").string()).to_hex() == key.to_hex());

  CHECK_THROWS_AS(lepton::EncryptionKey::from_file((folder / "missing.key").string()), lepton::FileNotFound);
}

TEST_CASE("key from the environment", "[crypto]") {
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  ::setenv("LEPTON_TEST_MODEL_KEY", key.to_hex().c_str(), 1);
  const auto read = lepton::EncryptionKey::from_environment("LEPTON_TEST_MODEL_KEY");
  REQUIRE(read.has_value());
  CHECK(read->to_hex() == key.to_hex());

  ::setenv("LEPTON_TEST_MODEL_KEY", "", 1);
  CHECK_FALSE(lepton::EncryptionKey::from_environment("LEPTON_TEST_MODEL_KEY").has_value());
  ::unsetenv("LEPTON_TEST_MODEL_KEY");
  CHECK_FALSE(lepton::EncryptionKey::from_environment("LEPTON_TEST_MODEL_KEY").has_value());
}

TEST_CASE("protected artifact loads like the plain one", "[crypto][artifact]") {
  const fs::path folder = scratch_folder("artifact");
  const lepton::ModelArtifact plain = lepton::load_artifact(kGoldenModel);
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  const lepton::SigningKey signer = lepton::SigningKey::generate();
  const std::string path = (folder / "model.lepton").string();

  lepton::save_artifact(plain, path, lepton::SaveOptions().with_key(key).with_signing_key(signer));
  const lepton::ModelArtifact loaded =
      lepton::load_artifact(path, lepton::LoadOptions().with_key(key).with_trusted_key(signer.public_key()));

  CHECK(lepton::serialize_artifact(loaded) == lepton::serialize_artifact(plain));
}

TEST_CASE("encrypted artifact needs its key", "[crypto][artifact]") {
  const fs::path folder = scratch_folder("needs_key");
  const std::string path = (folder / "model.lepton").string();
  lepton::save_artifact(lepton::load_artifact(kGoldenModel), path,
                        lepton::SaveOptions().with_key(lepton::EncryptionKey::generate()));

  CHECK_THROWS_WITH(lepton::load_artifact(path), Catch::Contains("encrypted") && Catch::Contains("no key"));
  CHECK_THROWS_AS(lepton::load_artifact(path, lepton::LoadOptions().with_key(lepton::EncryptionKey::generate())),
                  lepton::ParseError);
}

TEST_CASE("trusted key requires a signature", "[crypto][artifact]") {
  const fs::path folder = scratch_folder("needs_signature");
  const std::string path = (folder / "model.lepton").string();
  lepton::save_artifact(lepton::load_artifact(kGoldenModel), path);

  const lepton::SigningKey trusted = lepton::SigningKey::generate();
  CHECK_THROWS_WITH(lepton::load_artifact(path, lepton::LoadOptions().with_trusted_key(trusted.public_key())),
                    Catch::Contains("not signed"));
}

TEST_CASE("tampered encrypted artifact file is rejected", "[crypto][artifact]") {
  const fs::path folder = scratch_folder("tampered_file");
  const std::string path = (folder / "model.lepton").string();
  const lepton::EncryptionKey key = lepton::EncryptionKey::generate();
  lepton::save_artifact(lepton::load_artifact(kGoldenModel), path, lepton::SaveOptions().with_key(key));

  std::string bytes = lepton::read_file(path);
  bytes[bytes.size() / 3] = static_cast<char>(bytes[bytes.size() / 3] ^ 0x10);
  lepton::write_file_atomically(path, bytes);
  CHECK_THROWS_AS(lepton::load_artifact(path, lepton::LoadOptions().with_key(key)), lepton::ParseError);

  lepton::write_file_atomically(path, bytes.substr(0, bytes.size() - 100));
  CHECK_THROWS_AS(lepton::load_artifact(path, lepton::LoadOptions().with_key(key)), lepton::ParseError);
}
