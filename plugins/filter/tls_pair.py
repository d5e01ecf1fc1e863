# Copyright: wsfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Why a PEM certificate chain and private key cannot serve TLS together, or an empty string."""

from __future__ import annotations

from typing import Any

DOCUMENTATION = r"""
name: tls_pair
short_description: Why a PEM certificate chain and private key cannot serve TLS together
version_added: 0.1.0
description:
  - The load balancer roles check their TLS material with it before they write anything, on the
    controller (with the C(cryptography) library that ansible-core itself needs), so a certificate
    or key that is not PEM, a key with a passphrase, or a key that belongs to another certificate
    never replaces the files a running load balancer serves from.
  - Returns an empty string when the chain parses, its first certificate is the server's and the key
    is that certificate's; otherwise why not, naming the variables (never showing the key).
positional: key, certificate_variable, key_variable
options:
  _input:
    description: The certificate chain, PEM text (the server's certificate first).
    type: str
    required: true
  key:
    description: The private key, PEM text, without a passphrase.
    type: str
    required: true
  certificate_variable:
    description: The variable the chain came from, for the message.
    type: str
    required: true
  key_variable:
    description: The variable the key came from, for the message.
    type: str
    required: true
"""

EXAMPLES = r"""
- ansible.builtin.assert:
    that: (cert | wsfleet.fleet.tls_pair(key, 'nginx_lb_tls_certificate', 'nginx_lb_tls_key')) == ''
"""

RETURN = r"""
_value:
  description: Empty when the pair can serve TLS, else why not.
  type: str
"""


def tls_pair(certificate: Any, key: Any, certificate_variable: str, key_variable: str) -> str:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        chain = x509.load_pem_x509_certificates(str(certificate).encode())
    except ValueError:
        return f"{certificate_variable} holds no PEM certificate (-----BEGIN CERTIFICATE----- ...) that parses."
    try:
        private = serialization.load_pem_private_key(str(key).encode(), password=None)
    except TypeError:
        return f"{key_variable} is encrypted: the load balancer needs the key without a passphrase."
    except (ValueError, UnsupportedAlgorithm):
        return f"{key_variable} holds no PEM private key (-----BEGIN PRIVATE KEY----- ...) that parses."
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if chain[0].public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        return (f"{key_variable} is not the key of the first certificate in {certificate_variable}"
                f" ({chain[0].subject.rfc4514_string()}): the server's certificate comes first, then its chain.")
    return ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"tls_pair": tls_pair}
