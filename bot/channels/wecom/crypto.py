"""WeCom callback crypto: wechatpy's enterprise ``PrpCrypto`` framing, with the checks wechatpy
leaves out.

WeCom callbacks are always encrypted (AES-256-CBC, key = EncodingAESKey + "=", IV = its first 16
bytes, PKCS#7 to 32 bytes; plaintext = 16 random bytes + 4-byte length + message + CorpID) and
signed: ``msg_signature`` = sha1 of sorted(token, timestamp, nonce, ciphertext). The URL check
signs and encrypts ``echostr`` the same way and expects its plaintext back.

Added here: signatures compared in constant time (wechatpy uses ``!=``), a timestamp window
against replays, PKCS#7 and length-prefix validation before reading the CorpID (wechatpy trusts
the padding byte), and the random prefix of replies from ``secrets``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable

from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.utils import WeChatSigner

_BLOCK = 32


class CallbackRejected(Exception):
    """A callback we refuse: ``status`` is the HTTP answer, ``reason`` the log line (no secrets)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


class _Prp(PrpCrypto):  # type: ignore[misc]
    """wechatpy's framing with the random prefix from ``secrets`` (tests can pin it)."""

    def __init__(self, key: bytes, prefix: Callable[[], str]) -> None:
        super().__init__(key)
        self._prefix = prefix

    def get_random_string(self) -> str:
        return self._prefix()


class WeComCrypto:
    def __init__(
        self,
        token: str,
        aes_key: str,
        corp_id: str,
        *,
        window: int = 300,
        clock: Callable[[], float] = time.time,
        prefix: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        key = base64.b64decode(aes_key + "=")
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self.token = token
        self.corp_id = corp_id
        self.window = window
        self.clock = clock
        self._prp = _Prp(key, prefix)

    def _check(self, given: str, timestamp: str, nonce: str, encrypted: str) -> None:
        try:
            sent = int(timestamp)
        except ValueError:
            raise CallbackRejected(400, "timestamp is not an integer") from None
        skew = abs(self.clock() - sent)
        if skew > self.window:
            raise CallbackRejected(403, f"timestamp outside the {self.window}s window (skew {skew:.0f}s)")
        if not given or not same(signature(self.token, timestamp, nonce, encrypted), given):
            raise CallbackRejected(403, "bad msg_signature")

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The URL check: the plaintext of ``echostr``, which WeCom expects back."""
        self._check(msg_signature, timestamp, nonce, echostr)
        return self._open(echostr)

    def decrypt(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The inner XML of a callback, after checking the signature, window and CorpID."""
        self._check(msg_signature, timestamp, nonce, encrypted)
        return self._open(encrypted)

    def _open(self, encrypted: str) -> str:
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected(400, "ciphertext is not base64") from None
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
            message = content[4 : 4 + length].decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRejected(400, "decrypted message is not UTF-8") from None
        if not same(self.corp_id, content[4 + length :].decode("utf-8", "replace")):
            raise CallbackRejected(403, "message is for another CorpID")
        return message

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        """The encrypted passive-reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce)."""
        timestamp = timestamp or str(int(self.clock()))
        encrypted = self._prp.encrypt(xml, self.corp_id).decode("ascii")
        sig = signature(self.token, timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{cdata(nonce)}]]></Nonce></xml>"
        )


def cdata(value: str) -> str:
    """Text safe inside ``<![CDATA[…]]>``: a ``]]>`` in it is split across two sections."""
    return value.replace("]]>", "]]]]><![CDATA[>")
