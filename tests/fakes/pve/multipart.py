"""pve-http-server's own multipart/form-data reader for uploads, ported rule by rule.

PVE does not parse multipart generically. pve-http-server, src/PVE/APIServer/AnyEvent.pm,
sub file_upload_multipart, takes the form fields `content`, `checksum-algorithm` and
`checksum` by one regex each, in that order, and then demands the file part, named
`filename`. Any other order or name makes a regex reach across a part boundary, and the
request dies. This module is that reader, on a body that arrived in one piece; it returns
the same parameters, or raises HttpFailure with the text the server dies with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Perl appends " at FILE line N.\n" to a die() text without a final newline. The lines
# of the two such dies in AnyEvent.pm: pve-http-server 6.0.5 (PVE 9.x), 5.2.2 (PVE 8.4).
_SOURCE = "/usr/share/perl5/PVE/APIServer/AnyEvent.pm"
_LINES = {
    9: {"wrong field": 1325, "upload failed": 1370},
    8: {"wrong field": 1281, "upload failed": 1317},
}

# The three fields phase 1 extracts, in the order it tries them.
FORM_FIELDS = ("content", "checksum-algorithm", "checksum")


class HttpFailure(Exception):
    """A die() inside the HTTP server's upload reader: `text` is exactly what Perl dies
    with; the server turns it into the status line (see server.py)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Upload:
    params: dict[str, str]  # the three form fields found, plus `filename`
    filename: str
    data: bytes


def perl_die(text: str, where: str, major: int) -> str:
    line = _LINES[9 if major >= 9 else 8][where]
    return text if text.endswith("\n") else f"{text} at {_SOURCE} line {line}.\n"


def boundary_of(content_type: str) -> tuple[str, str | None]:
    """AnyEvent.pm, sub parse_content_type: split on `;` or `,`; the boundary is taken as
    written, quotes included (a quoted boundary then never matches the body)."""
    kind, *options = re.split(r"\s*[;,]\s*", content_type)
    for option in options:
        found = re.fullmatch(r"\s*boundary\s*=\s*(\S+?)\s*", option)
        if found:
            return kind, found[1]
    return kind, None


def _trim(text: bytes) -> str:
    # PVE::Tools::trim: strip leading and trailing whitespace.
    return text.strip().decode("utf-8", "replace")


def _assert_form_disposition(disposition: bytes) -> None:
    # AnyEvent.pm, my sub assert_form_disposition.
    if disposition != b"form-data":
        shown = disposition.decode("utf-8", "replace")
        raise HttpFailure(
            f"wrong Content-Disposition '{shown}' in multipart, expected 'form-data'\n"
        )


class _Reader:
    """The read buffer `rbuf` and the phase machine of file_upload_multipart."""

    def __init__(self, body: bytes, boundary: str, major: int) -> None:
        self.major = major
        self.rbuf = body
        newline = rb"\r?\n"
        self.newline = newline
        self.delim = rb"--" + re.escape(boundary.encode()) + newline
        self.close_delim = rb"--" + re.escape(boundary.encode()) + rb"--"
        self.params: dict[str, str] = {}
        self.phase = 0

    def sub(self, pattern: bytes, replacement: bytes) -> re.Match[bytes] | None:
        """Perl's `$rbuf =~ s/^PATTERN/REPLACEMENT/s`, once; REPLACEMENT may say \\1."""
        found = re.match(pattern, self.rbuf, re.S)
        if found:
            self.rbuf = found.expand(replacement) + self.rbuf[found.end() :]
        return found

    def skip_preamble(self) -> None:
        # Phase 0: drop everything before the first delimiter, keep the delimiter.
        if self.sub(rb".*?(" + self.delim + rb")", rb"\1"):
            self.phase = 1

    def remove_until_data(self) -> None:
        # The part's remaining headers (Content-Type, ...) up to the blank line.
        self.sub(rb".*?(?:" + self.newline + rb"){2}", b"")

    def extract_form_field(self, name: str) -> None:
        # AnyEvent.pm, file_upload_multipart, $extract_form_disposition. The lazy `.*?`
        # may run across part boundaries: that is how a field sent out of order ends in
        # a "wrong Content-Disposition" die.
        pattern = (
            rb"^"
            + self.delim
            + rb".*?Content-Disposition: (.*?); name=\""
            + name.encode()
            + rb"\"(.*?"
            + self.delim
            + rb")"
        )
        found = re.match(pattern, self.rbuf, re.S)
        if not found:
            return
        self.rbuf = found[2] + self.rbuf[found.end() :]
        _assert_form_disposition(found[1])
        self.remove_until_data()
        value = self.sub(rb"(.*?)(" + self.delim + rb")", rb"\2")
        if value:
            self.params[name] = _trim(value[1])

    def take_file_header(self) -> None:
        found = self.sub(
            rb"^"
            + self.delim
            + rb"Content-Disposition: (.*?); name=\"(.*?)\"; filename=\"([^\"]+)\"",
            b"",
        )
        if not found:
            return
        _assert_form_disposition(found[1])
        if found[2] != b"filename":
            field = found[2].decode("utf-8", "replace")
            raise HttpFailure(
                perl_die(
                    f"wrong field name '{field}' for file upload, expected 'filename'",
                    "wrong field",
                    self.major,
                )
            )
        self.phase = 2
        self.params["filename"] = _trim(found[3])
        self.remove_until_data()

    def take_data(self) -> bytes | None:
        # Phase 2: the file is everything up to the closing delimiter, one newline
        # before it dropped (possessive `?+`, as upstream).
        found = self.sub(rb"^(.*?)(?:" + self.newline + rb")?+" + self.close_delim + rb".*$", b"")
        if not found:
            return None
        self.phase = 100
        return found[1]


def parse_upload(body: bytes, boundary: str, query: dict[str, str], major: int = 9) -> Upload:
    """The upload's parameters as the API handler gets them: query parameters, then the
    form fields phase 1 found, then `filename`; or HttpFailure as the server dies."""
    reader = _Reader(body, boundary, major)
    reader.params.update(query)
    reader.skip_preamble()
    data = None
    if reader.phase == 1:
        for name in FORM_FIELDS:
            reader.extract_form_field(name)
        reader.take_file_header()
    if reader.phase == 2:
        data = reader.take_data()
    if data is None:
        # All of Content-Length read and no file finished: the server gives up.
        raise HttpFailure(perl_die("upload failed", "upload failed", major))
    return Upload(reader.params, reader.params["filename"], data)
