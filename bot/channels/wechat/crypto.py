"""Callback signatures and AES for the WeChat Official Account, with the checks wechatpy omits.

wechatpy supplies the signer, the AES cipher and the message framing; this layer adds what its
own ``check_signature``/``WeChatCrypto`` leave out: signatures compared in constant time
(wechatpy uses ``!=``), a timestamp window against replays, and a decrypt that validates the
PKCS#7 padding and the length prefix before reading the AppID (wechatpy trusts the padding byte).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable

from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.utils import WeChatSigner

_BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16


class CallbackRejected(Exception):
    """A callback we refuse. ``status`` is the HTTP answer, ``reason`` the log line (no secrets)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(*parts: str) -> str:
    """sha1 over the sorted, concatenated parts: WeChat's ``signature`` and ``msg_signature``."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def same(expected: str, given: str) -> bool:
    """Constant-time comparison, so response timing does not leak how much of a guess was right."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


class _Prp(PrpCrypto):  # type: ignore[misc]
    """wechatpy's framing with a random prefix from ``secrets`` (tests can pin it)."""

    def __init__(self, key: bytes, prefix: Callable[[], str]) -> None:
        super().__init__(key)
        self._prefix = prefix

    def get_random_string(self) -> str:
        return self._prefix()


class CallbackCrypto:
    """Verifies, decrypts and encrypts callbacks for one Official Account."""

    def __init__(
        self,
        token: str,
        app_id: str,
        aes_key: str = "",
        *,
        window: int = 300,
        clock: Callable[[], float] = time.time,
        prefix: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.window = window
        self.clock = clock
        self._prp: _Prp | None = None
        if aes_key:
            key = base64.b64decode(aes_key + "=")
            if len(key) != 32:
                raise ValueError("EncodingAESKey must decode to 32 bytes")
            self._prp = _Prp(key, prefix)

    @property
    def can_encrypt(self) -> bool:
        return self._prp is not None

    def check_fresh(self, timestamp: str) -> None:
        try:
            sent = int(timestamp)
        except ValueError:
            raise CallbackRejected(400, f"timestamp {timestamp[:20]!r} is not an integer") from None
        skew = abs(self.clock() - sent)
        if skew > self.window:
            raise CallbackRejected(403, f"timestamp outside the {self.window}s window (skew {skew:.0f}s)")

    def verify(self, given: str, timestamp: str, nonce: str) -> None:
        """URL verification and plaintext callbacks: ``signature`` over token, timestamp, nonce."""
        self.check_fresh(timestamp)
        if not given or not same(signature(self.token, timestamp, nonce), given):
            raise CallbackRejected(403, "bad signature")

    def decrypt(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The inner XML of an encrypted callback, after checking ``msg_signature`` and the AppID."""
        if self._prp is None:
            raise CallbackRejected(400, "encrypted callback but no EncodingAESKey configured")
        self.check_fresh(timestamp)
        if not msg_signature or not same(signature(self.token, timestamp, nonce, encrypted), msg_signature):
            raise CallbackRejected(403, "bad msg_signature")
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected(400, "Encrypt is not base64") from None
        if not raw or len(raw) % _BLOCK:
            raise CallbackRejected(400, "ciphertext length is not a multiple of 32")
        plain = self._prp.cipher.decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackRejected(400, "bad padding (wrong EncodingAESKey?)")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CallbackRejected(400, "decrypted message too short")
        length = int.from_bytes(content[:4], "big")
        if length > len(content) - 4:
            raise CallbackRejected(400, "decrypted length prefix exceeds the message")
        try:
            xml = content[4 : 4 + length].decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRejected(400, "decrypted message is not UTF-8") from None
        if not same(self.app_id, content[4 + length :].decode("utf-8", "replace")):
            raise InvalidAppIdException()
        return xml

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        """The encrypted reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce)."""
        if self._prp is None:
            raise RuntimeError("no EncodingAESKey configured")
        timestamp = timestamp or str(int(self.clock()))
        encrypted = self._prp.encrypt(xml, self.app_id).decode("ascii")
        sig = signature(self.token, timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{_cdata_safe(nonce)}]]></Nonce></xml>"
        )


def _cdata_safe(value: str) -> str:
    return value.replace("]]>", "]]]]><![CDATA[>")
