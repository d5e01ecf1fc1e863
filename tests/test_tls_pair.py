"""The filter that checks the load balancers' TLS material on the controller before any write."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "filter"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_role_input_errors import certificate_and_key  # noqa: E402
from tls_pair import FilterModule, tls_pair  # noqa: E402


def test_a_matching_pair_with_its_chain_passes_and_any_other_is_named(tmp_path: Path) -> None:
    cert, key = certificate_and_key(tmp_path, "server.example")
    other_cert, other_key = certificate_and_key(tmp_path, "ca.example")
    chain = cert.read_text() + other_cert.read_text()
    assert tls_pair(chain, key.read_text(), "c", "k") == ""
    assert tls_pair(other_cert.read_text() + cert.read_text(), key.read_text(), "c", "k").startswith("k is not the key of the first certificate in c (CN=ca.example)")
    assert tls_pair(chain, other_key.read_text(), "c", "k").startswith("k is not the key")
    assert tls_pair("", key.read_text(), "c", "k") == "c holds no PEM certificate (-----BEGIN CERTIFICATE----- ...) that parses."
    assert tls_pair(chain, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "c", "k").startswith("k holds no PEM private key")
    assert FilterModule().filters()["tls_pair"] is tls_pair
