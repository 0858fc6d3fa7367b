"""Callback signatures and AES for the WeChat Official Account (the shared hardened framing is
in :mod:`bot.channels.wxcrypto`); an AppID mismatch raises wechatpy's own exception."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import InvalidAppIdException

from bot.channels.wxcrypto import (
    CallbackRejected,
    EnvelopeCrypto,
    aes_key,
    check_fresh,
    same,
    signature,
    with_prefix,
)

__all__ = ["CallbackCrypto", "CallbackRejected", "same", "signature"]


class CallbackCrypto(EnvelopeCrypto):
    """Verifies, decrypts and encrypts callbacks for one Official Account."""

    def __init__(
        self,
        token: str,
        app_id: str,
        aes_key_text: str = "",
        *,
        window: int = 300,
        clock: Callable[[], float] = time.time,
        prefix: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        prp = with_prefix(PrpCrypto, aes_key(aes_key_text), prefix) if aes_key_text else None
        super().__init__(token, app_id, prp, window=window, clock=clock)

    @property
    def can_encrypt(self) -> bool:
        return self._prp is not None

    def check_fresh(self, timestamp: str) -> None:
        check_fresh(timestamp, self.window, self.clock)

    def verify(self, given: str, timestamp: str, nonce: str) -> None:
        """URL verification and plaintext callbacks: ``signature`` over token, timestamp, nonce."""
        self.check_fresh(timestamp)
        if not given or not same(signature(self.token, timestamp, nonce), given):
            raise CallbackRejected(403, "bad signature")

    def decrypt(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The inner XML of an encrypted callback, after checking ``msg_signature`` and the AppID."""
        if self._prp is None:
            raise CallbackRejected(400, "encrypted callback but no EncodingAESKey configured")
        self.check_msg_signature(msg_signature, timestamp, nonce, encrypted)
        xml, ours = self.open_for_receiver(encrypted)
        if not ours:
            raise InvalidAppIdException()
        return xml

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        """The encrypted reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce)."""
        if self._prp is None:
            raise RuntimeError("no EncodingAESKey configured")
        return self.seal(xml, nonce, timestamp)
