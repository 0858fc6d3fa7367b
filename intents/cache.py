"""A signed on-disk store for model arrays.

The NLU cache lives in the service's data directory, which other processes and people can write
to. So we never unpickle it (arrays are loaded with ``allow_pickle=False``) and we only trust a
file we wrote ourselves: each file carries an HMAC-SHA256 made with a random key kept beside the
cache (mode 0600). A file that fails the check is ignored and rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_MAGIC = b"QIBOT-NLU-CACHE-1\n"
_MAC_LEN = hashlib.sha256().digest_size
_KEY_FILE = "cache.key"
_KEY_LEN = 32


class SignedStore:
    """``save``/``load`` of named array bundles in one directory, authenticated with a local key."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _key(self) -> bytes:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / _KEY_FILE
        try:
            key = path.read_bytes()
            if len(key) == _KEY_LEN:
                return key
            log.warning("NLU cache key %s is malformed; replacing it (old cache files become invalid)", path)
            path.unlink()
        except FileNotFoundError:
            pass
        key = secrets.token_bytes(_KEY_LEN)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return path.read_bytes()
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.npz"

    def save(self, name: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Write atomically (temp file + rename) so a crash never leaves a half file behind."""
        buf = io.BytesIO()
        # numpy's stubs read ** as possibly naming allow_pickle; the keys here are array names
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
        payload = buf.getvalue()
        mac = hmac.new(self._key(), payload, hashlib.sha256).digest()
        target = self.path(name)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_MAGIC + mac + payload)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def load(self, name: str) -> dict[str, np.ndarray] | None:
        """The arrays, or None when the file is missing, foreign, tampered with or unreadable."""
        target = self.path(name)
        try:
            blob = target.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read NLU cache %s: %s", target, exc)
            return None
        try:
            key = self._key()
        except OSError as exc:
            log.warning("cannot read or create the NLU cache key in %s: %s", self.directory, exc)
            return None
        head = len(_MAGIC)
        mac, payload = blob[head : head + _MAC_LEN], blob[head + _MAC_LEN :]
        expected = hmac.new(key, payload, hashlib.sha256).digest()
        if not blob.startswith(_MAGIC) or not hmac.compare_digest(mac, expected):
            log.warning("NLU cache %s failed its signature check; ignoring it", target)
            return None
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (ValueError, OSError) as exc:
            log.warning("NLU cache %s is unreadable: %s", target, exc)
            return None

    def prune(self, prefix: str, keep: str) -> None:
        """Remove stale bundles of one kind (older cache keys), keeping ``keep``."""
        for path in self.directory.glob(f"{prefix}*.npz"):
            if path.stem != keep:
                path.unlink(missing_ok=True)
