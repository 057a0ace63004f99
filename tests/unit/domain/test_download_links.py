"""Download tokens: the cached signer makes exactly the tokens itsdangerous makes."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

from server.domain.download_links import SALT, DownloadGrant, make_token, read_token
from server.domain.errors import DownloadInvalidError


def test_tokens_are_itsdangerous_tokens_both_ways() -> None:
    plain = URLSafeTimedSerializer("s3cret", salt=SALT)
    token = make_token("s3cret", DownloadGrant(7, 8, 9))
    assert plain.loads(token, max_age=60) == [7, 8, 9]
    assert read_token("s3cret", plain.dumps([7, 8, 0]), 60) == DownloadGrant(7, 8, None)


def test_a_token_made_with_another_secret_is_refused() -> None:
    token = make_token("one secret", DownloadGrant(1, 2))
    assert read_token("one secret", token, 60) == DownloadGrant(1, 2)
    with pytest.raises(DownloadInvalidError):
        read_token("another secret", token, 60)
