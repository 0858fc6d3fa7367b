"""WeCom callback crypto. Callbacks are always encrypted; the URL check signs and encrypts
``echostr`` the same way and expects its plaintext back. The hardened framing shared with the
Official Account is in :mod:`bot.channels.wxcrypto`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from wechatpy.enterprise.crypto import PrpCrypto

from bot.channels.wxcrypto import CallbackRejected, EnvelopeCrypto, aes_key, cdata, with_prefix

__all__ = ["CallbackRejected", "WeComCrypto", "cdata"]


class WeComCrypto(EnvelopeCrypto):
    def __init__(
        self,
        token: str,
        aes_key_text: str,
        corp_id: str,
        *,
        window: int = 300,
        clock: Callable[[], float] = time.time,
        prefix: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        super().__init__(token, corp_id, with_prefix(PrpCrypto, aes_key(aes_key_text), prefix),
                         window=window, clock=clock)

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The URL check: the plaintext of ``echostr``, which WeCom expects back."""
        self.check_msg_signature(msg_signature, timestamp, nonce, echostr)
        return self._open(echostr)

    def decrypt(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The inner XML of a callback, after checking the signature, window and CorpID."""
        self.check_msg_signature(msg_signature, timestamp, nonce, encrypted)
        return self._open(encrypted)

    def _open(self, encrypted: str) -> str:
        message, ours = self.open_for_receiver(encrypted)
        if not ours:
            raise CallbackRejected(403, "message is for another CorpID")
        return message

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        """The encrypted passive-reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce)."""
        return self.seal(xml, nonce, timestamp)
