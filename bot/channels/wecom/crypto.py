"""WeCom callback crypto. Callbacks are always encrypted; the URL check signs and encrypts
``echostr`` the same way and expects its plaintext back. The hardened framing shared with the
Official Account is in :mod:`bot.channels.wxcrypto`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from wechatpy.enterprise.crypto import PrpCrypto

from bot.channels.wxcrypto import (
    CallbackRejected,
    aes_key,
    cdata,
    check_fresh,
    open_envelope,
    same,
    seal,
    signature,
    with_prefix,
)

__all__ = ["CallbackRejected", "WeComCrypto", "cdata"]


class WeComCrypto:
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
        self.token = token
        self.corp_id = corp_id
        self.window = window
        self.clock = clock
        self._prp = with_prefix(PrpCrypto, aes_key(aes_key_text), prefix)

    def _check(self, given: str, timestamp: str, nonce: str, encrypted: str) -> None:
        check_fresh(timestamp, self.window, self.clock)
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
        message, corp_id = open_envelope(self._prp, encrypted)
        if not same(self.corp_id, corp_id):
            raise CallbackRejected(403, "message is for another CorpID")
        return message

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        """The encrypted passive-reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce)."""
        return seal(self._prp, self.token, xml, self.corp_id, nonce, timestamp or str(int(self.clock())))
