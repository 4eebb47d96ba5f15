"""The HTTP requests of every Bot this process makes: python-telegram-bot's HTTPXRequest, all
sharing one TLS context. httpx builds a context per client and loads the CA bundle into each
(tens of ms of CPU); a start-up makes four clients (the check before the model loads, the
Application's two, the channel posts' Bot), `doctor` one, and the tests make hundreds.
Verification is unchanged: the context is httpx's own default (certifi's bundle, or
SSL_CERT_FILE / SSL_CERT_DIR)."""
from __future__ import annotations

import functools
import ssl

import httpx
from telegram.request import HTTPXRequest

# python-telegram-bot's own pool sizes (ApplicationBuilder): requests, and the one long poll
POOL_SIZE, UPDATES_POOL_SIZE = 256, 1


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default context, made once per process."""
    return httpx.create_ssl_context()


def telegram_request(connection_pool_size: int = POOL_SIZE) -> HTTPXRequest:
    """PTB's default request (HTTP/1.1, its timeouts) with the shared TLS context."""
    return HTTPXRequest(connection_pool_size=connection_pool_size, httpx_kwargs={"verify": tls_context()})
