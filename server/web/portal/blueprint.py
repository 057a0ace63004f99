"""The portal's blueprint; its pages live in the modules beside this one."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("portal", __name__)
