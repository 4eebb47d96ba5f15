"""Every Bot's requests share one TLS context, and it still verifies certificates."""
from __future__ import annotations

import ssl

from bot.telegram.requests import telegram_request, tls_context


def test_requests_share_one_context_that_verifies():
    first, second = telegram_request(), telegram_request(1)
    context = tls_context()
    assert first._client_kwargs["verify"] is context and second._client_kwargs["verify"] is context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() or context.cert_store_stats()["x509_ca"] > 0   # a CA bundle is loaded
