"""The HTTP clients python-telegram-bot sends with, on one verified TLS context per process.

PTB builds two httpx clients per bot (one for requests, one for ``getUpdates``), and httpx makes
a new TLS context for each by loading the whole CA bundle: 20-40 ms of CPU every time a bot or an
Application is built (a worker start, each ``qibot`` command that notifies, every test runtime).
An :class:`ssl.SSLContext` may be shared by any number of connections, so the process builds the
default verified one (the same CA bundle httpx would load) once and hands it to every client.
Pool sizes and timeouts are PTB's own defaults.
"""

from __future__ import annotations

import functools
import ssl

import certifi
from telegram.request import HTTPXRequest

__all__ = ["http_request", "tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Certificate and host-name verification on, as httpx's default (``verify=True``)."""
    return ssl.create_default_context(cafile=certifi.where())


def http_request(*, get_updates: bool = False) -> HTTPXRequest:
    """A client as ``ApplicationBuilder`` would build it (pool of 256; 1 for ``getUpdates``)."""
    return HTTPXRequest(connection_pool_size=1 if get_updates else 256, httpx_kwargs={"verify": tls_context()})
