"""Settings gunicorn reads by itself when started here (``gunicorn wsgi:app``).

Its access log hides the tokens of download and set-password links, as ``vigor serve``'s does.
"""

logger_class = "server.serving.RedactingLogger"
