from server.app import create_app
from server.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # no usable secret, a bad setting: one line, not a traceback
    raise SystemExit(f"error: {exc}") from None
