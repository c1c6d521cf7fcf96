"""Phone numbers: normalized to E.164 with Google's libphonenumber, encrypted with AES-GCM under a key id (so
keys can rotate), looked up through an HMAC blind index, and shown only masked (138****8000)."""

from __future__ import annotations

import hashlib
import hmac
import os
from uuid import UUID

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from loyalty_common.errors import InvalidPhone
from loyalty_common.settings import PhoneKey

DEFAULT_REGION = "CN"
_NONCE_BYTES = 12


def normalize(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 (+8613800138000) for a valid number, else `invalid_phone`. A number without a country code is read
    as Chinese; a bare international number whose '+' became a space in a query string is read with it."""
    candidate = raw.strip()
    attempts = [candidate]
    if candidate.isdigit() and len(candidate) > 11:
        attempts.append("+" + candidate)
    for attempt in attempts:
        try:
            number = phonenumbers.parse(attempt, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidPhone("The phone number is not a valid number")


def mask(e164: str) -> str:
    """Keep the first 3 and the last 4 digits of the national number: 13800138000 -> 138****8000."""
    number = phonenumbers.parse(e164, None)
    national = phonenumbers.national_significant_number(number)
    if len(national) <= 7:
        return national[:2] + "*" * (len(national) - 4) + national[-2:]
    return national[:3] + "*" * (len(national) - 7) + national[-4:]


class PhoneVault:
    """Encrypts phone numbers for storage and computes their blind index. The first key encrypts; every key
    named in LOYALTY_PHONE_KEYS can decrypt, which is what lets keys rotate while the services run."""

    def __init__(self, keys: tuple[PhoneKey, ...], blind_index_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one phone key is needed")
        self._current = keys[0]
        self._keys = {k.key_id: AESGCM(k.key) for k in keys}
        self._blind_key = blind_index_key

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    def encrypt(self, e164: str, member_id: UUID) -> tuple[bytes, str]:
        """Ciphertext (nonce || AES-GCM output) bound to the member id, and the key id used."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current.key_id].encrypt(nonce, e164.encode(), member_id.bytes)
        return nonce + sealed, self._current.key_id

    def decrypt(self, ciphertext: bytes, key_id: str, member_id: UUID) -> str:
        aead = self._keys.get(key_id)
        if aead is None:
            raise KeyError(f"phone key {key_id!r} is not configured")
        nonce, sealed = ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:]
        return aead.decrypt(nonce, sealed, member_id.bytes).decode()

    def blind_index(self, e164: str) -> bytes:
        return hmac.new(self._blind_key, e164.encode(), hashlib.sha256).digest()

    def can_decrypt(self, key_id: str) -> bool:
        return key_id in self._keys
