"""The unit tests import the collection's plugins from the working tree: its Python package path,
ansible_collections.wsfleet.fleet, is collections/ (a link back to the repository root, ansible.cfg)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collections"))
