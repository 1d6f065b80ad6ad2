// Encryption keys, signing keys, envelopes and the save and load options of protected model files.
//
// Key objects never print their secret: repr() of an EncryptionKey or a SigningKey shows only the type, and
// their hex form is available through to_hex() or seed_hex() for callers that must store it.
#include <fmt/format.h>

#include "bindings.hpp"
#include "lepton/crypto.hpp"

namespace lepton::python {
namespace {

std::string to_bytes(const py::bytes& data) { return std::string(data); }

PublicKey public_key_from_bytes(const py::bytes& data) {
  const std::string raw(data);
  if (raw.size() != PublicKey::kBytes) {
    throw py::value_error(fmt::format("data: expected {} bytes of an Ed25519 public key, got {} bytes; pass the "
                                      "raw key, or use PublicKey.from_hex for its 64 hex digits",
                                      PublicKey::kBytes, raw.size()));
  }
  return PublicKey::from_bytes(reinterpret_cast<const unsigned char*>(raw.data()));
}

void register_variables(py::module_& m) {
  m.attr("MODEL_KEY_VARIABLE") = kModelKeyVariable;
  m.attr("MODEL_KEY_FILE_VARIABLE") = kModelKeyFileVariable;
  m.attr("SIGNING_KEY_FILE_VARIABLE") = kSigningKeyFileVariable;
  m.attr("TRUSTED_KEY_FILE_VARIABLE") = kTrustedKeyFileVariable;
}

void register_keys(py::module_& m) {
  py::class_<EncryptionKey>(m, "EncryptionKey",
                            "A 32-byte XChaCha20-Poly1305 key. Build one with generate(), from_hex(), from_file() or "
                            "from_environment(); repr() never shows the key.")
      .def_property_readonly_static(
          "BYTES", [](py::object) { return EncryptionKey::kBytes; }, "Key length in bytes.")
      .def_static("generate", &EncryptionKey::generate, "Return a fresh random key from libsodium's CSPRNG.")
      .def_static("from_hex", &EncryptionKey::from_hex, py::arg("hex"), py::arg("source") = "<hex>",
                  "Parse 64 hex digits (surrounding spaces and line ends are ignored). Raises InvalidArgument "
                  "naming source, without echoing the text.")
      .def_static("from_file", &EncryptionKey::from_file, py::arg("path"),
                  "Read a key file of 64 hex digits or exactly 32 raw bytes. Raises FileNotFound, IoError or "
                  "InvalidArgument.")
      .def_static("from_environment", &EncryptionKey::from_environment, py::arg("name") = kModelKeyVariable,
                  "Return the key in environment variable name (64 hex digits), or None when it is unset or empty.")
      .def("to_hex", &EncryptionKey::to_hex, "Return the key as 64 lower-case hex digits, the format from_hex reads.")
      .def("__repr__", [](const EncryptionKey&) { return std::string("EncryptionKey(<secret>)"); });

  py::class_<PublicKey>(m, "PublicKey", "An Ed25519 public key: the signer identity that a loader trusts.")
      .def_property_readonly_static(
          "BYTES", [](py::object) { return PublicKey::kBytes; }, "Key length in bytes.")
      .def_static("from_hex", &PublicKey::from_hex, py::arg("hex"), py::arg("source") = "<hex>",
                  "Parse 64 hex digits. Raises InvalidArgument naming source.")
      .def_static("from_file", &PublicKey::from_file, py::arg("path"),
                  "Read a file of 64 hex digits or exactly 32 raw bytes. Raises FileNotFound, IoError or "
                  "InvalidArgument.")
      .def_static("from_bytes", &public_key_from_bytes, py::arg("data"),
                  "Build the key from exactly 32 raw bytes; raises ValueError for another length.")
      .def("to_hex", &PublicKey::to_hex, "Return the key as 64 lower-case hex digits.")
      .def("__eq__", [](const PublicKey& self, const PublicKey& other) { return self == other; }, py::arg("other"),
           "True when both keys have the same bytes.")
      .def("__hash__", [](const PublicKey& self) { return py::hash(py::str(self.to_hex())); })
      .def("__repr__", [](const PublicKey& self) { return fmt::format("PublicKey('{}')", self.to_hex()); });

  py::class_<SigningKey>(m, "SigningKey",
                         "An Ed25519 signing key derived from a 32-byte seed; repr() never shows the seed.")
      .def_property_readonly_static(
          "SEED_BYTES", [](py::object) { return SigningKey::kSeedBytes; }, "Seed length in bytes.")
      .def_static("generate", &SigningKey::generate, "Return a key pair from a fresh random seed.")
      .def_static("from_seed_hex", &SigningKey::from_seed_hex, py::arg("hex"), py::arg("source") = "<hex>",
                  "Derive the key pair from a seed of 64 hex digits. Raises InvalidArgument naming source.")
      .def_static("from_file", &SigningKey::from_file, py::arg("path"),
                  "Read a seed file of 64 hex digits or exactly 32 raw bytes. Raises FileNotFound, IoError or "
                  "InvalidArgument.")
      .def("seed_hex", &SigningKey::seed_hex, "Return the seed as 64 hex digits, the format from_file reads.")
      .def_property_readonly("public_key", &SigningKey::public_key,
                             "The PublicKey that verifies this key's signatures.")
      .def("__repr__", [](const SigningKey& self) {
        return fmt::format("SigningKey(public_key='{}')", self.public_key().to_hex());
      });
}

void register_envelopes(py::module_& m) {
  m.def(
      "is_encrypted", [](const py::bytes& data) { return is_encrypted(to_bytes(data)); }, py::arg("data"),
      "True when data start with the magic of an encrypted envelope (LEPTONEC).");
  m.def(
      "is_signed", [](const py::bytes& data) { return is_signed(to_bytes(data)); }, py::arg("data"),
      "True when data start with the magic of a signed envelope (LEPTONSG).");
  m.def(
      "encrypt_bytes",
      [](const py::bytes& plain, const EncryptionKey& key) {
        std::string input = to_bytes(plain);
        std::string sealed;
        {
          py::gil_scoped_release release;
          sealed = encrypt_bytes(input, key);
        }
        return py::bytes(sealed);
      },
      py::arg("plain"), py::arg("key"), "Wrap plain bytes in an encrypted envelope with a fresh random nonce.");
  m.def(
      "decrypt_bytes",
      [](const py::bytes& sealed, const EncryptionKey& key, const std::string& source) {
        std::string input = to_bytes(sealed);
        std::string plain;
        {
          py::gil_scoped_release release;
          plain = decrypt_bytes(input, key, source);
        }
        return py::bytes(plain);
      },
      py::arg("sealed"), py::arg("key"), py::arg("source") = "<bytes>",
      "Open an encrypted envelope. Raises ParseError naming source for bytes that are no envelope, are "
      "truncated, or fail authentication (a wrong key or any changed byte).");
  m.def(
      "sign_bytes",
      [](const py::bytes& content, const SigningKey& key) {
        std::string input = to_bytes(content);
        std::string signed_bytes;
        {
          py::gil_scoped_release release;
          signed_bytes = sign_bytes(input, key);
        }
        return py::bytes(signed_bytes);
      },
      py::arg("content"), py::arg("key"), "Wrap content (plain or encrypted bytes) in a signed envelope.");

  py::class_<VerifiedContent>(m, "VerifiedContent", "The content of a signed envelope and the key that signed it.")
      .def_property_readonly(
          "content", [](const VerifiedContent& self) { return py::bytes(self.content); }, "The signed bytes.")
      .def_readonly("signer", &VerifiedContent::signer, "PublicKey of the signer.");
  m.def(
      "verify_bytes",
      [](const py::bytes& signed_bytes, const std::optional<PublicKey>& trusted, const std::string& source) {
        std::string input = to_bytes(signed_bytes);
        py::gil_scoped_release release;
        return verify_bytes(input, trusted, source);
      },
      py::arg("signed_bytes"), py::arg("trusted") = py::none(), py::arg("source") = "<bytes>",
      "Check a signed envelope and return its VerifiedContent. With trusted set, the signer must be that key. "
      "Raises ParseError naming source for a truncated envelope, an invalid signature or an untrusted signer.");
}

void register_options(py::module_& m) {
  py::class_<SaveOptions>(m, "SaveOptions",
                          "Protection that save_artifact applies: encryption with key, then a signature with signing_key. "
                          "The with_* methods set a field and return the same object.")
      .def(py::init([](std::optional<EncryptionKey> key, std::optional<SigningKey> signing_key) {
             SaveOptions options;
             options.key = std::move(key);
             options.signing_key = std::move(signing_key);
             return options;
           }),
           py::arg("key") = py::none(), py::arg("signing_key") = py::none())
      .def_readwrite("key", &SaveOptions::key, "EncryptionKey; None writes the file unencrypted.")
      .def_readwrite("signing_key", &SaveOptions::signing_key, "SigningKey; None writes no signature.")
      .def(
          "with_key",
          [](py::object self, const EncryptionKey& key) {
            self.cast<SaveOptions&>().with_key(key);
            return self;
          },
          py::arg("key"), "Set key; return this object.")
      .def(
          "with_signing_key",
          [](py::object self, const SigningKey& key) {
            self.cast<SaveOptions&>().with_signing_key(key);
            return self;
          },
          py::arg("key"), "Set signing_key; return this object.")
      .def_static("from_environment", &SaveOptions::from_environment,
                  "Read the key from LEPTON_MODEL_KEY (or the file named by LEPTON_MODEL_KEY_FILE) and the signing "
                  "key from the file named by LEPTON_SIGNING_KEY_FILE; an unset variable leaves its field None.");

  py::class_<LoadOptions>(m, "LoadOptions",
                          "Requirements that load_artifact enforces: key opens encrypted files, and trusted_key makes a valid "
                          "signature by that key mandatory. The with_* methods set a field and return the same "
                          "object.")
      .def(py::init([](std::optional<EncryptionKey> key, std::optional<PublicKey> trusted_key) {
             LoadOptions options;
             options.key = std::move(key);
             options.trusted_key = std::move(trusted_key);
             return options;
           }),
           py::arg("key") = py::none(), py::arg("trusted_key") = py::none())
      .def_readwrite("key", &LoadOptions::key, "EncryptionKey for encrypted files, or None.")
      .def_readwrite("trusted_key", &LoadOptions::trusted_key,
                     "PublicKey that must have signed the file; None accepts unsigned files.")
      .def(
          "with_key",
          [](py::object self, const EncryptionKey& key) {
            self.cast<LoadOptions&>().with_key(key);
            return self;
          },
          py::arg("key"), "Set key; return this object.")
      .def(
          "with_trusted_key",
          [](py::object self, const PublicKey& key) {
            self.cast<LoadOptions&>().with_trusted_key(key);
            return self;
          },
          py::arg("key"), "Set trusted_key; return this object.")
      .def_static("from_environment", &LoadOptions::from_environment,
                  "Read the key from LEPTON_MODEL_KEY (or the file named by LEPTON_MODEL_KEY_FILE) and the trusted "
                  "key from the file named by LEPTON_TRUSTED_KEY_FILE; an unset variable leaves its field None.");

  m.def(
      "protect_bytes",
      [](const py::bytes& plain, const SaveOptions& options) {
        std::string input = to_bytes(plain);
        std::string protected_bytes;
        {
          py::gil_scoped_release release;
          protected_bytes = protect_bytes(input, options);
        }
        return py::bytes(protected_bytes);
      },
      py::arg("plain"), py::arg("options"), "Apply the envelopes of options to plain: encryption, then signature.");
  m.def(
      "unprotect_bytes",
      [](const py::bytes& data, const LoadOptions& options, const std::string& source) {
        std::string input = to_bytes(data);
        std::string plain;
        {
          py::gil_scoped_release release;
          plain = unprotect_bytes(input, options, source);
        }
        return py::bytes(plain);
      },
      py::arg("data"), py::arg("options"), py::arg("source") = "<bytes>",
      "Remove the envelopes and return the plain bytes. Raises ParseError when a required signature is missing, "
      "invalid or untrusted, when an encrypted file comes without its key, or when decryption fails.");
}

}  // namespace

void register_crypto(py::module_& m) {
  register_variables(m);
  register_keys(m);
  register_envelopes(m);
  register_options(m);
}

}  // namespace lepton::python
