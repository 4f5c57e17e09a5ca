"""The HTTP parser's own refusals in the project's envelope.

A request the parser cannot take (a request line or headers past its limits, malformed
framing) never reaches the app; uvicorn answers it with a plain-text 400. These protocol
classes send the same 400 as the error envelope, so every answer a client gets parses alike.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import error_body


def _envelope_400(protocol, message: str) -> None:
    body = json.dumps(error_body(400, f"the HTTP request could not be parsed: {message}", reason="invalid_http")).encode()
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    for name, value in protocol.server_state.default_headers:
        head += [name, b": ", value, b"\r\n"]
    head += [b"content-type: application/json\r\n", b"content-length: ", str(len(body)).encode(), b"\r\n",
             b"connection: close\r\n\r\n"]
    protocol.transport.write(b"".join(head) + body)
    protocol.transport.close()


class EnvelopeHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        _envelope_400(self, msg)


class EnvelopeH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        _envelope_400(self, msg)
