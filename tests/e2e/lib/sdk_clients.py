"""The official Python SDKs pointed at the gateway, with every HTTP exchange recorded.

    rec = Recorder()
    a = rec.anthropic(base_url=gw.ai_url, api_key=alice.access_token)
    a.messages.create(...)
    ex = rec.last()              # method, url, request headers/body, status, response headers/body
    ex.request_id                # the gateway's x-agentnet-request-id

The SDKs (anthropic 2.x, openai 3.x) are built on `httpx2`; each gets an `httpx2.Client` whose
transport tees the response stream into the recording as the SDK reads it, so streaming is not
buffered. `trust_env=False`: no proxy from the environment, traffic stays on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import anthropic
import httpx2
import openai


@dataclass
class Exchange:
    method: str
    url: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def request_id(self) -> str | None:
        return self.header("x-agentnet-request-id")

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def all_text(self) -> str:
        """Everything the client received: status line, headers, body."""
        heads = "\n".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.status}\n{heads}\n\n{self.text()}"


class _Tee(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, sink: bytearray) -> None:
        self._inner = inner
        self._sink = sink

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._sink.extend(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class RecordingTransport(httpx2.HTTPTransport):
    def __init__(self, exchanges: list[Exchange]) -> None:
        super().__init__(trust_env=False)
        self._exchanges = exchanges

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()  # the SDKs send bytes: reading keeps them for the transport
        ex = Exchange(
            method=request.method,
            url=str(request.url),
            request_headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            request_body=bytes(body),
        )
        self._exchanges.append(ex)
        response = super().handle_request(request)
        ex.status = response.status_code
        ex.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
        response.stream = _Tee(response.stream, ex.body)  # type: ignore[arg-type]
        return response


class Recorder:
    """Makes SDK clients whose exchanges land in `self.exchanges` (shared by all its clients)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def http_client(self) -> httpx2.Client:
        return httpx2.Client(transport=RecordingTransport(self.exchanges), trust_env=False, timeout=60)

    def anthropic(self, *, base_url: str, api_key: str, **kw) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=base_url, api_key=api_key, max_retries=0, http_client=self.http_client(), **kw
        )

    def openai(self, *, base_url: str, api_key: str, **kw) -> openai.OpenAI:
        """`base_url` is the gateway's root; the OpenAI SDK wants …/v1."""
        return openai.OpenAI(
            base_url=f"{base_url.rstrip('/')}/v1", api_key=api_key, max_retries=0, http_client=self.http_client(), **kw
        )

    def last(self) -> Exchange:
        return self.exchanges[-1]

    def mark(self) -> int:
        return len(self.exchanges)

    def since(self, mark: int) -> list[Exchange]:
        return self.exchanges[mark:]
