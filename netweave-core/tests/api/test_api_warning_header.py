"""``Warning`` headers carry texts from backends (a chart's file names, Helm's messages): they
must always encode as one line of ASCII."""

from __future__ import annotations

import pytest
from netweave.api.common import warning_header


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("plain text", "plain text"),
        ('say "hi"', "say 'hi'"),
        ("templates/€.yaml", "templates/\\\\u20ac.yaml"),
        ("a\\b", "a\\\\u005cb"),
        ("line\r\nX-Injected: 1", "line\\\\u000d\\\\u000aX-Injected: 1"),
        ("smile 😀", "smile \\\\ud83d\\\\ude00"),
        ("nul\x00del\x7f", "nul\\\\u0000del\\\\u007f"),
    ],
)
def test_warning_texts_are_ascii_quoted_strings(text: str, sent: str) -> None:
    header = warning_header([text])["Warning"]
    assert header == f'299 netweave "{sent}"'
    header.encode("ascii")


def test_several_warnings_and_none() -> None:
    assert warning_header([]) == {}
    assert warning_header(["a", "b"]) == {"Warning": '299 netweave "a", 299 netweave "b"'}
