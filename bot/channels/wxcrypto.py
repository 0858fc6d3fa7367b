"""The callback crypto shared by the WeChat Official Account and WeCom, with the checks wechatpy
omits.

Both platforms frame messages the same way (AES-256-CBC, key = EncodingAESKey + "=", IV = its
first 16 bytes, PKCS#7 to 32 bytes; plaintext = 16 random bytes + 4-byte big-endian length +
message + AppID/CorpID) and sign with sha1 over the sorted token, timestamp, nonce (and
ciphertext). wechatpy supplies the signer, the cipher and the framing; this module adds
signatures compared in constant time (wechatpy uses ``!=``), a timestamp window against replays,
and a decrypt that validates the padding and the length prefix before reading the trailing id
(wechatpy trusts the padding byte).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy.utils import WeChatSigner

BLOCK = 32  # both platforms pad to 32 bytes, not AES's 16
# Characters XML 1.0 forbids (C0 controls but tab/newline/return, lone surrogates, U+FFFE/FFFF).
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class CallbackRejected(Exception):
    """A callback we refuse. ``status`` is the HTTP answer, ``reason`` the log line (no secrets)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signature(*parts: str) -> str:
    """sha1 over the sorted, concatenated parts: ``signature`` and ``msg_signature``."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def same(expected: str, given: str) -> bool:
    """Constant-time comparison, so response timing does not leak how much of a guess was right."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def cdata(value: str) -> str:
    """The one CDATA writer of WeChat and WeCom: a whole ``<![CDATA[…]]>`` section that survives
    any text. A ``]]>`` is split across two sections and characters XML 1.0 forbids (a control
    character pasted into a case description) are dropped (wechatpy renders CDATA without either)."""
    clean = _NOT_XML_CHAR.sub("", value)
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def parse_xml(text: str) -> dict[str, Any]:
    """The one callback parser of WeChat and WeCom: the ``<xml>`` element as a dict. xmltodict
    refuses entity declarations (``ValueError``); that and malformed XML are a 400, never a 500."""
    try:
        root = xmltodict.parse(text)
    except ExpatError as exc:
        raise CallbackRejected(400, f"malformed XML ({exc})") from None
    except ValueError as exc:  # xmltodict: "entities are disabled"
        raise CallbackRejected(400, f"XML refused ({exc})") from None
    xml = root.get("xml") if isinstance(root, dict) else None
    if not isinstance(xml, dict):
        raise CallbackRejected(400, "XML without an <xml> element of fields")
    return xml


def aes_key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def with_prefix(prp_class: type[Any], key: bytes, prefix: Callable[[], str]) -> Any:
    """wechatpy's framing with the random prefix taken from ``prefix`` (``secrets`` in service,
    pinned in tests)."""

    class _Prp(prp_class):
        def get_random_string(self) -> str:
            return prefix()

    return _Prp(key)


def check_fresh(timestamp: str, window: int, clock: Callable[[], float]) -> None:
    # ASCII digits of a plausible length: a 400-digit "timestamp" would overflow the float below.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise CallbackRejected(400, f"timestamp {timestamp[:20]!r} is not an integer")
    sent = int(timestamp)
    skew = abs(clock() - sent)
    if skew > window:
        raise CallbackRejected(403, f"timestamp outside the {window}s window (skew {skew:.0f}s)")


def open_envelope(prp: Any, encrypted: str) -> tuple[str, str]:
    """Decrypt and unframe: (message, the trailing AppID/CorpID), validating everything first."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise CallbackRejected(400, "ciphertext is not base64") from None
    if not raw or len(raw) % BLOCK:
        raise CallbackRejected(400, "ciphertext length is not a multiple of 32")
    plain = prp.cipher.decrypt(raw)
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
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
    return message, content[4 + length :].decode("utf-8", "replace")


def seal(prp: Any, token: str, xml: str, receiver_id: str, nonce: str, timestamp: str) -> str:
    """The encrypted reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce)."""
    encrypted = prp.encrypt(xml, receiver_id).decode("ascii")
    sig = signature(token, timestamp, nonce, encrypted)
    return (
        f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>"
    )


class EnvelopeCrypto:
    """What the Official Account and WeCom share: a token, the receiver (AppID or CorpID) named
    inside every AES envelope, and a freshness window for signed timestamps. Each channel keeps
    its own entry points and its own answer to an envelope meant for another receiver."""

    def __init__(
        self, token: str, receiver_id: str, prp: Any | None, *, window: int, clock: Callable[[], float]
    ) -> None:
        self.token = token
        self.receiver_id = receiver_id
        self.window = window
        self.clock = clock
        self._prp = prp

    def check_msg_signature(self, given: str, timestamp: str, nonce: str, encrypted: str) -> None:
        check_fresh(timestamp, self.window, self.clock)
        if not given or not same(signature(self.token, timestamp, nonce, encrypted), given):
            raise CallbackRejected(403, "bad msg_signature")

    def open_for_receiver(self, encrypted: str) -> tuple[str, bool]:
        """The plaintext, and whether the envelope names this receiver."""
        message, receiver_id = open_envelope(self._prp, encrypted)
        return message, same(self.receiver_id, receiver_id)

    def seal(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        return seal(self._prp, self.token, xml, self.receiver_id, nonce, timestamp or str(int(self.clock())))
