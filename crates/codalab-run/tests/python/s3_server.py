#!/usr/bin/env python3
"""moto's S3-compatible server, plus the presigned-URL checks moto leaves out.

scripts/dev-services runs this (with the venv's Python) on 127.0.0.1:9000 in
place of a bare `moto_server`. moto serves S3 in memory but does not check
presigned URLs at all: a URL with a wrong signature, one past its expiry, or
a PUT URL used for a GET all succeed. Real S3 answers those with 403, and the
worker's tests need that, so every request whose query carries
X-Amz-Signature (a SigV4 presigned URL) is checked here first, as S3 does:

  * X-Amz-Algorithm must be AWS4-HMAC-SHA256 and all of X-Amz-Credential,
    X-Amz-Date, X-Amz-Expires and X-Amz-SignedHeaders must be there
    (else 400 AuthorizationQueryParametersError);
  * past X-Amz-Date + X-Amz-Expires: 403 AccessDenied "Request has expired";
  * the SigV4 signature over method, path, query, the signed headers and
    UNSIGNED-PAYLOAD (or X-Amz-Content-Sha256 when given), with the secret key
    of every access key being --secret-key (default "test"), must match
    (else 403 SignatureDoesNotMatch). As in S3, the method is part of the
    signature, and headers that are not in X-Amz-SignedHeaders (for example
    x-ms-blob-type or Content-Type) do not matter.

Everything else (requests signed in the Authorization header, as boto3 sends
them, and anonymous ones) goes to moto unchecked, as before: moto takes any
credentials. Only moto's S3 is of interest here, though moto serves its other
services on the same port too.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import signal
import sys
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

ALGORITHM = "AWS4-HMAC-SHA256"
# S3's limit for X-Amz-Expires: 7 days.
MAX_EXPIRES = 7 * 24 * 3600


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _uri_encode(s: str, safe: str) -> str:
    # SigV4's UriEncode: everything but unreserved characters (and `safe`).
    return quote(s, safe="-_.~" + safe)


def _header(environ: dict, name: str) -> str | None:
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


class PresignedUrlCheck:
    """WSGI middleware: check SigV4 presigned URLs, then call the app."""

    def __init__(self, app, secret_key: str):
        self.app = app
        self.secret_key = secret_key

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if "X-Amz-Signature=" in query:
            problem = self.check(environ, query)
            if problem is not None:
                status, code, message = problem
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                ).encode()
                # Read and drop the request body (of a PUT) first: a server
                # that answers and closes with unread data makes the kernel
                # reset the connection, and the client may then see the reset
                # instead of the 403.
                self.drain(environ)
                start_response(
                    status,
                    [
                        ("Content-Type", "application/xml"),
                        ("Content-Length", str(len(body))),
                    ],
                )
                return [body]
        return self.app(environ, start_response)

    @staticmethod
    def drain(environ: dict) -> None:
        stream = environ.get("wsgi.input")
        if stream is None:
            return
        if environ.get("wsgi.input_terminated"):
            # Chunked: werkzeug's stream ends where the body does.
            while stream.read(1 << 20):
                pass
            return
        # Otherwise the stream is the socket: read Content-Length bytes, no
        # more (reading on would wait for the client's next request).
        try:
            left = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return
        while left > 0:
            chunk = stream.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)

    def check(self, environ: dict, query: str) -> tuple[str, str, str] | None:
        """None when the presigned URL is good, else (status, code, message)."""
        pairs = []
        params = {}
        for item in query.split("&"):
            if not item:
                continue
            k, _, v = item.partition("=")
            k, v = unquote(k), unquote(v)
            pairs.append((k, v))
            params.setdefault(k, v)

        def bad(message: str):
            return ("400 Bad Request", "AuthorizationQueryParametersError", message)

        if params.get("X-Amz-Algorithm") != ALGORITHM:
            return bad(f"X-Amz-Algorithm only supports {ALGORITHM}")
        for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"):
            if not params.get(name):
                return bad(f"Query-string authentication version 4 requires {name}")
        scope = params["X-Amz-Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return bad("X-Amz-Credential must be KEY/DATE/REGION/SERVICE/aws4_request")
        _access_key, date, region, service, _ = scope
        amz_date = params["X-Amz-Date"]
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            return bad("X-Amz-Date must be YYYYMMDDTHHMMSSZ and X-Amz-Expires a number")
        if not 0 <= expires <= MAX_EXPIRES:
            return bad(f"X-Amz-Expires must be between 0 and {MAX_EXPIRES}")
        if not amz_date.startswith(date):
            return bad("the date in X-Amz-Credential differs from X-Amz-Date")
        if datetime.now(timezone.utc) > signed_at + timedelta(seconds=expires):
            return ("403 Forbidden", "AccessDenied", "Request has expired")

        # The canonical request: S3 paths are encoded once ('/' kept).
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"]
        raw_path = raw_path.split("?", 1)[0]
        canonical_uri = _uri_encode(unquote(raw_path), safe="/")
        canonical_query = "&".join(
            f"{_uri_encode(k, '')}={_uri_encode(v, '')}"
            for k, v in sorted(pairs)
            if k != "X-Amz-Signature"
        )
        signed_headers = params["X-Amz-SignedHeaders"]
        canonical_headers = ""
        for name in signed_headers.split(";"):
            value = _header(environ, name)
            if value is None:
                return ("403 Forbidden", "AccessDenied", f"signed header {name} is missing")
            canonical_headers += f"{name}:{' '.join(value.split())}\n"
        payload = params.get("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
        canonical_request = "\n".join(
            [
                environ["REQUEST_METHOD"],
                canonical_uri,
                canonical_query,
                canonical_headers,
                signed_headers,
                payload,
            ]
        )
        string_to_sign = "\n".join(
            [
                ALGORITHM,
                amz_date,
                "/".join(scope[1:]),
                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
            ]
        )
        key = _hmac(("AWS4" + self.secret_key).encode("utf-8"), date)
        for part in (region, service, "aws4_request"):
            key = _hmac(key, part)
        expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
            return (
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="s3_server.py", description=__doc__.split("\n\n", 1)[0])
    p.add_argument("-H", "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("-p", "--port", type=int, default=9000, help="port (default 9000)")
    p.add_argument(
        "--secret-key",
        default=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        help="secret key of every access key, for presigned URLs "
        "(default $AWS_SECRET_ACCESS_KEY, else 'test')",
    )
    a = p.parse_args(argv)

    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import run_simple
    except ImportError as e:
        print(f"error: moto[server] is not installed in this Python: {e}", file=sys.stderr)
        return 1

    # As moto_server does: its settings read MOTO_PORT, and SIGTERM exits.
    os.environ.setdefault("MOTO_PORT", str(a.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        a.host,
        a.port,
        PresignedUrlCheck(app, a.secret_key),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
