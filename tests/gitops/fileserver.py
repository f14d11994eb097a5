"""A static file server for the pipeline's pods, run as a process of its own on the real node's
bridge address: GET serves the files under --root (a directory answers with its index.html, so a
PEP 503 tree is a package index); with --writable, PUT stores the body at the path, as Argo's
Artifactory driver saves an artifact, behind HTTP basic auth. --tls-cert/--tls-key serve HTTPS
(pip refuses a plain-HTTP index it is not told to trust, and the Dockerfile cannot be told).

Usage: python3 tests/gitops/fileserver.py --root DIR --address IP --port N
           [--tls-cert CRT --tls-key KEY] [--writable --credentials USER:PASSWORD]
(stdlib only: it runs with any python3)"""

from __future__ import annotations

import argparse
import base64
import functools
import ssl
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(SimpleHTTPRequestHandler):
    writable = False
    authorization = ""

    def do_PUT(self) -> None:
        if not self.writable:
            self.send_error(405, "read-only")
            return
        if self.headers.get("Authorization") != self.authorization:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="artifacts"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = Path(self.translate_path(self.path))
        root = Path(self.directory).resolve()
        if root not in target.resolve().parents:
            self.send_error(400, "outside the root")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")  # a reader never sees half a file
        partial.write_bytes(self._body())
        partial.replace(target)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body(self) -> bytes:
        """The request body, sent with a length or in chunks (as Argo's Artifactory driver streams)."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers, up to the blank line
            pass
        return b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--writable", action="store_true")
    parser.add_argument("--credentials", default="", help="USER:PASSWORD that PUT must send")
    args = parser.parse_args()
    if args.writable and ":" not in args.credentials:
        parser.error("--writable needs --credentials USER:PASSWORD")
    token = base64.b64encode(args.credentials.encode()).decode()
    handler = type("Configured", (Handler,), {"writable": args.writable, "authorization": f"Basic {token}"})
    server = ThreadingHTTPServer((args.address, args.port), functools.partial(handler, directory=str(args.root)))
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
