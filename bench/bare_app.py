"""Baselines for bench/check.py, served by the same gunicorn settings as Vigor.

- ``GET /constant``: a bare Flask endpoint returning a constant JSON body (the issue's baseline).
- ``POST /floor``: the least any authenticated, signed answer must do: parse the JSON body, look
  the license up by the SHA-256 of its key through one indexed query, and sign a small canonical
  JSON document with Ed25519.
"""

from __future__ import annotations

import hashlib
import json
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, Response, jsonify, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
BODY = {"status": "ok", "update": None, "notices": []}
KEY = Ed25519PrivateKey.generate()
_engine = None


def engine():  # type: ignore[no-untyped-def]
    global _engine
    if _engine is None:
        url = os.environ["VIGOR_DATABASE_URL"]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        _engine = create_engine(url)
    return _engine


@app.get("/constant")
def constant() -> Response:
    return jsonify(BODY)


@app.post("/floor")
def floor() -> Response:
    body = request.get_json()
    key = request.headers["Authorization"].removeprefix("License ")
    with engine().connect() as conn:
        row = conn.execute(
            text("SELECT id, status FROM licenses WHERE key_hash = :h"),
            {"h": hashlib.sha256(key.encode()).hexdigest()},
        ).one()
    signed = {"type": "check", "license": row[0], "status": row[1], "nonce": body["nonce"]}
    data = json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()
    return jsonify({"signed": signed, "signatures": [{"sig": KEY.sign(data).hex()}]})


@app.get("/readyz")
def readyz() -> Response:
    return jsonify({"status": "ok"})
