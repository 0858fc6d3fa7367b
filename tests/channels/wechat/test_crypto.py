"""Signatures and AES against external truth: the published vectors of wechatpy's own test
suite (tests/test_utils.py and tests/test_crypto.py in wechatpy/wechatpy), and wechatpy's
``WeChatCrypto`` as the other side of every round trip."""

from __future__ import annotations

import base64

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.utils import check_signature

from bot.channels.wechat.crypto import CallbackCrypto, CallbackRejected, same, signature

# wechatpy tests/test_crypto.py (the WeCom class; the Official Account class shares its base).
from tests.channels import wechatpy_vectors as _v

VEC_TOKEN, VEC_KEY, VEC_ID = _v.TOKEN, _v.AES_KEY, _v.RECEIVER_ID
VEC_TIMESTAMP, VEC_NONCE = _v.MESSAGE_TIMESTAMP, _v.MESSAGE_NONCE
VEC_DECRYPT_SIGNATURE, VEC_CIPHERTEXT = _v.MESSAGE_SIGNATURE, _v.MESSAGE_ENCRYPT
VEC_REPLY, VEC_ENCRYPTED, VEC_ENCRYPTED_SIGNATURE = _v.REPLY, _v.REPLY_ENCRYPT, _v.REPLY_SIGNATURE


def vector_crypto(**kw: object) -> CallbackCrypto:
    return CallbackCrypto(VEC_TOKEN, VEC_ID, VEC_KEY, window=10**10, **kw)  # type: ignore[arg-type]


def test_the_published_signature_vector() -> None:
    # wechatpy tests/test_utils.py
    assert signature("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    crypto = CallbackCrypto("test", "wx", window=10**10)
    crypto.verify("f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "1410685589", "test")
    check_signature("test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "1410685589", "test")  # wechatpy agrees
    with pytest.raises(CallbackRejected) as refused:
        crypto.verify("f21891de399b4e33a1a93c9a7b8a8fffb5a443fe", "1410685589", "test")
    assert refused.value.status == 403


def test_the_published_decrypt_vector() -> None:
    xml = vector_crypto().decrypt(VEC_CIPHERTEXT, VEC_DECRYPT_SIGNATURE, VEC_TIMESTAMP, VEC_NONCE)
    fields = xmltodict.parse(xml)["xml"]
    assert fields["Content"] == "test" and fields["FromUserName"] == "messense"


def test_the_published_encrypt_vector() -> None:
    envelope = vector_crypto(prefix=lambda: "1234567890123456").encrypt(VEC_REPLY, VEC_NONCE, VEC_TIMESTAMP)
    fields = xmltodict.parse(envelope)["xml"]
    assert fields["Encrypt"] == VEC_ENCRYPTED
    assert fields["MsgSignature"] == VEC_ENCRYPTED_SIGNATURE
    assert fields["TimeStamp"] == VEC_TIMESTAMP and fields["Nonce"] == VEC_NONCE


def test_a_wrong_nonce_fails_the_published_vector() -> None:
    with pytest.raises(CallbackRejected) as refused:
        vector_crypto().decrypt(VEC_CIPHERTEXT, VEC_DECRYPT_SIGNATURE, VEC_TIMESTAMP, "461056295")
    assert refused.value.status == 403


def test_round_trips_with_wechatpy_both_ways() -> None:
    ours = vector_crypto()
    theirs = WeChatCrypto(VEC_TOKEN, VEC_KEY, VEC_ID)
    text = "<xml><Content><![CDATA[质量 ]]]]><![CDATA[> 基础]]></Content></xml>"
    envelope = xmltodict.parse(theirs.encrypt_message(text, "n1", VEC_TIMESTAMP))["xml"]
    assert ours.decrypt(envelope["Encrypt"], envelope["MsgSignature"], VEC_TIMESTAMP, "n1") == text
    reply = ours.encrypt(text, "n2", VEC_TIMESTAMP)
    fields = xmltodict.parse(reply)["xml"]
    assert theirs.decrypt_message(reply, fields["MsgSignature"], VEC_TIMESTAMP, "n2") == text


def test_another_appid_is_refused() -> None:
    other = WeChatCrypto(VEC_TOKEN, VEC_KEY, "wx0000000000000000")
    envelope = xmltodict.parse(other.encrypt_message("<xml/>", "n", VEC_TIMESTAMP))["xml"]
    with pytest.raises(InvalidAppIdException):
        vector_crypto().decrypt(envelope["Encrypt"], envelope["MsgSignature"], VEC_TIMESTAMP, "n")


@pytest.mark.parametrize(
    "cipher",
    [
        "not base64!",
        base64.b64encode(b"x" * 31).decode(),  # not a whole number of blocks
        base64.b64encode(b"\x00" * 64).decode(),  # decrypts to garbage: padding check fails
    ],
)
def test_garbage_ciphertext_is_a_400_not_a_crash(cipher: str) -> None:
    crypto = vector_crypto()
    sig = signature(VEC_TOKEN, VEC_TIMESTAMP, VEC_NONCE, cipher)
    with pytest.raises(CallbackRejected) as refused:
        crypto.decrypt(cipher, sig, VEC_TIMESTAMP, VEC_NONCE)
    assert refused.value.status == 400


def test_timestamps_outside_the_window_are_refused() -> None:
    crypto = CallbackCrypto("test", "wx", window=300, clock=lambda: 1410685589 + 301)
    with pytest.raises(CallbackRejected, match="window"):
        crypto.verify("f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "1410685589", "test")
    CallbackCrypto("test", "wx", window=300, clock=lambda: 1410685589 - 299).verify(
        "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "1410685589", "test"
    )
    with pytest.raises(CallbackRejected) as refused:
        crypto.verify("f21891de399b4e33a1a93c9a7b8a8fffb5a443ff", "soon", "test")
    assert refused.value.status == 400


def test_comparison_handles_non_ascii_guesses() -> None:
    assert same("abc", "abc") and not same("abc", "abd") and not same("abc", "äbc")
