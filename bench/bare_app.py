"""Baseline for bench/check.py: a bare Flask app returning a constant JSON body."""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)
BODY = {"status": "ok", "update": None, "notices": []}


@app.get("/constant")
def constant() -> Response:
    return jsonify(BODY)


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})
