"""WSGI entry point for gunicorn: `gunicorn app.wsgi:server`.

The configuration is found as the collector finds it: $LIBRARIAN_CONFIG, else
./librarian.toml. Debug mode is never on here.
"""

import logging

from app import create_app
from collector.config import find_config_path, load_config

logging.basicConfig(level=logging.INFO, format="librarian: %(levelname)s: %(name)s: %(message)s")
server = create_app(load_config(find_config_path(None))).server
