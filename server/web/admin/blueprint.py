"""The admin web's blueprint; its pages live in the modules beside this one."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("admin", __name__)
