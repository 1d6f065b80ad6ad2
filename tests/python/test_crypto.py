"""Protected model files from Python: keys, envelopes, encrypted and signed artifacts."""
import numpy as np
import pytest

import lepton


@pytest.fixture(scope="module")
def artifact(predictor):
    return predictor.artifact


@pytest.fixture(scope="module")
def sample(table):
    return table.select_rows(np.arange(200))


def test_key_hex_round_trip():
    key = lepton.EncryptionKey.generate()
    assert len(key.to_hex()) == 64
    assert lepton.EncryptionKey.from_hex(key.to_hex()).to_hex() == key.to_hex()


def test_key_repr_hides_secret():
    key = lepton.EncryptionKey.generate()
    signing = lepton.SigningKey.generate()
    assert key.to_hex() not in repr(key)
    assert signing.seed_hex() not in repr(signing)


def test_key_from_bad_hex_does_not_echo_it():
    secret = "zz" * 32
    with pytest.raises(lepton.InvalidArgument) as caught:
        lepton.EncryptionKey.from_hex(secret, "test key")
    assert "test key" in str(caught.value)
    assert secret not in str(caught.value)


def test_key_file_and_environment(tmp_path, monkeypatch):
    key = lepton.EncryptionKey.generate()
    path = tmp_path / "model.key"
    path.write_text(key.to_hex() + "\n")
    assert lepton.EncryptionKey.from_file(str(path)).to_hex() == key.to_hex()
    monkeypatch.setenv(lepton.MODEL_KEY_VARIABLE, key.to_hex())
    assert lepton.EncryptionKey.from_environment().to_hex() == key.to_hex()
    monkeypatch.delenv(lepton.MODEL_KEY_VARIABLE)
    assert lepton.EncryptionKey.from_environment() is None


def test_public_key_from_bytes_checks_length():
    public = lepton.SigningKey.generate().public_key
    assert lepton.PublicKey.from_bytes(bytes.fromhex(public.to_hex())) == public
    with pytest.raises(ValueError, match="32 bytes"):
        lepton.PublicKey.from_bytes(b"short")


def test_envelope_round_trip():
    key = lepton.EncryptionKey.generate()
    sealed = lepton.encrypt_bytes(b"model bytes", key)
    assert lepton.is_encrypted(sealed)
    assert not lepton.is_signed(sealed)
    assert lepton.decrypt_bytes(sealed, key) == b"model bytes"


def test_envelope_tampered_byte_fails():
    key = lepton.EncryptionKey.generate()
    sealed = bytearray(lepton.encrypt_bytes(b"model bytes", key))
    sealed[-1] ^= 1
    with pytest.raises(lepton.ParseError, match="tampered"):
        lepton.decrypt_bytes(bytes(sealed), key, "tampered")


def test_encrypted_artifact_predicts_the_same(artifact, predictor, sample, tmp_path):
    key = lepton.EncryptionKey.generate()
    path = str(tmp_path / "model.lepton")
    lepton.save_artifact(artifact, path, lepton.SaveOptions(key=key))
    assert lepton.is_encrypted(lepton.read_file(path))
    loaded = lepton.load_artifact(path, lepton.LoadOptions(key=key))
    expected = predictor.predict(sample).probability
    got = lepton.Predictor(loaded).predict(sample).probability
    np.testing.assert_array_equal(got, expected)


def test_encrypted_artifact_wrong_key_fails(artifact, tmp_path):
    path = str(tmp_path / "model.lepton")
    lepton.save_artifact(artifact, path, lepton.SaveOptions(key=lepton.EncryptionKey.generate()))
    with pytest.raises(lepton.ParseError):
        lepton.load_artifact(path, lepton.LoadOptions(key=lepton.EncryptionKey.generate()))


def test_encrypted_artifact_without_key_fails(artifact, tmp_path, monkeypatch):
    monkeypatch.delenv(lepton.MODEL_KEY_VARIABLE, raising=False)
    monkeypatch.delenv(lepton.MODEL_KEY_FILE_VARIABLE, raising=False)
    path = str(tmp_path / "model.lepton")
    lepton.save_artifact(artifact, path, lepton.SaveOptions(key=lepton.EncryptionKey.generate()))
    with pytest.raises(lepton.ParseError):
        lepton.load_artifact(path)


def test_signed_artifact_verifies_with_trusted_key(artifact, tmp_path):
    signing = lepton.SigningKey.generate()
    key = lepton.EncryptionKey.generate()
    path = str(tmp_path / "model.lepton")
    lepton.save_artifact(artifact, path, lepton.SaveOptions().with_key(key).with_signing_key(signing))
    data = lepton.read_file(path)
    assert lepton.is_signed(data)
    verified = lepton.verify_bytes(data, signing.public_key)
    assert verified.signer == signing.public_key
    assert lepton.is_encrypted(verified.content)
    loaded = lepton.load_artifact(path, lepton.LoadOptions(key=key, trusted_key=signing.public_key))
    assert loaded.network.parameter_count() == artifact.network.parameter_count()


def test_signed_artifact_rejects_untrusted_key(artifact, tmp_path):
    path = str(tmp_path / "model.lepton")
    lepton.save_artifact(artifact, path, lepton.SaveOptions(signing_key=lepton.SigningKey.generate()))
    other = lepton.SigningKey.generate().public_key
    with pytest.raises(lepton.ParseError):
        lepton.load_artifact(path, lepton.LoadOptions(trusted_key=other))


def test_unsigned_artifact_rejected_when_signature_required(artifact, tmp_path):
    path = str(tmp_path / "model.lepton")
    lepton.save_artifact(artifact, path)
    trusted = lepton.SigningKey.generate().public_key
    with pytest.raises(lepton.ParseError):
        lepton.load_artifact(path, lepton.LoadOptions(trusted_key=trusted))


def test_protect_and_unprotect_bytes():
    key = lepton.EncryptionKey.generate()
    signing = lepton.SigningKey.generate()
    protected = lepton.protect_bytes(b"payload", lepton.SaveOptions(key=key, signing_key=signing))
    plain = lepton.unprotect_bytes(protected, lepton.LoadOptions(key=key, trusted_key=signing.public_key))
    assert plain == b"payload"


def test_checkpoint_key_is_a_trainer_option():
    key = lepton.EncryptionKey.generate()
    options = lepton.TrainerOptions(checkpoint_key=key)
    assert options.checkpoint_key.to_hex() == key.to_hex()
