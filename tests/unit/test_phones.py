"""Phone numbers: E.164 normalization, masking, encryption at rest and the blind index."""

from __future__ import annotations

import secrets
import uuid

import pytest
from cryptography.exceptions import InvalidTag

from loyalty_common.errors import InvalidPhone
from loyalty_common.settings import PhoneKey
from loyalty_members.privacy.phones import PhoneVault, mask, normalize


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+8613800138000", "+8613800138000"),
        ("13800138000", "+8613800138000"),
        (" 138 0013 8000 ", "+8613800138000"),
        ("8613800138000", "+8613800138000"),  # a '+' lost to form decoding
        ("+1 650 253 0000", "+16502530000"),
    ],
)
def test_normalize(raw: str, e164: str) -> None:
    assert normalize(raw) == e164


@pytest.mark.parametrize("raw", ["123", "abc", "+86 1", "", "1380013800"])
def test_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize(raw)


def test_mask_keeps_three_and_four_digits() -> None:
    assert mask("+8613800138000") == "138****8000"
    assert mask("+16502530000") == "650***0000"


def vault(*keys: PhoneKey) -> PhoneVault:
    return PhoneVault(keys, secrets.token_bytes(32))


def test_encryption_round_trips_and_is_bound_to_the_member() -> None:
    v = vault(PhoneKey("k1", secrets.token_bytes(32)))
    member = uuid.uuid4()
    ciphertext, key_id = v.encrypt("+8613800138000", member)
    assert b"13800138000" not in ciphertext
    assert v.decrypt(ciphertext, key_id, member) == "+8613800138000"
    with pytest.raises(InvalidTag):
        v.decrypt(ciphertext, key_id, uuid.uuid4())
    second, _ = v.encrypt("+8613800138000", member)
    assert second != ciphertext  # a fresh nonce every time


def test_key_rotation_reads_old_ciphertexts_and_writes_with_the_new_key() -> None:
    old = PhoneKey("old", secrets.token_bytes(32))
    new = PhoneKey("new", secrets.token_bytes(32))
    member = uuid.uuid4()
    ciphertext, key_id = vault(old).encrypt("+8613800138000", member)
    rotated = vault(new, old)
    assert rotated.decrypt(ciphertext, key_id, member) == "+8613800138000"
    assert rotated.encrypt("+8613800138000", member)[1] == "new"


def test_blind_index_is_keyed_and_stable() -> None:
    key = secrets.token_bytes(32)
    a = PhoneVault((PhoneKey("k", secrets.token_bytes(32)),), key)
    b = PhoneVault((PhoneKey("j", secrets.token_bytes(32)),), key)
    c = PhoneVault((PhoneKey("k", secrets.token_bytes(32)),), secrets.token_bytes(32))
    assert a.blind_index("+8613800138000") == b.blind_index("+8613800138000")
    assert a.blind_index("+8613800138000") != c.blind_index("+8613800138000")
