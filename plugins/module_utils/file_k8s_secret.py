# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Kubernetes Secret manifest: ``key`` is a key of the Secret's ``data`` (base64 of the
exact bytes, as the API server decodes it) or ``stringData`` (plain text, which wins over
``data`` when both have the key, as on apply).  In a multi-document file ``document``
names the Secret (its ``metadata.name``); the other documents are not touched: the file is
cut at its ``---`` lines and only the Secret's own document goes through the YAML editor.
"""
from __future__ import annotations

import base64
import binascii
import re

from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    MissingKey,
    Syntax,
)
from ansible_collections.credops.pgauth.plugins.module_utils.file_yaml import (
    YamlSyntax,
    parse_yaml,
)

# a document marker at the start of a line is never inside content (YAML 1.2, 9.1.2)
_MARKER = re.compile(r"^(?:---|\.\.\.)(?=[ \t\r\n]|$)", re.MULTILINE)


def split_documents(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each document's text, the marker lines left out of it."""
    spans, start = [], 0
    for marker in _MARKER.finditer(text):
        spans.append((start, marker.start()))
        line_end = text.find("\n", marker.start())
        start = len(text) if line_end < 0 else line_end + 1
    spans.append((start, len(text)))
    return spans


def decode_data(encoded, key: str) -> str:
    if not isinstance(encoded, str):
        raise FormatError(f"data.{key} is not a base64 string")
    try:
        # the API server's decoder skips line breaks, nothing else
        raw = base64.b64decode(encoded.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"data.{key} is not valid base64") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"data.{key} is not UTF-8 text once decoded") from None


def encode_data(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


class K8sSecretSyntax(Syntax):
    name = "k8s_secret"

    def _secret(self, text: str) -> tuple[int, int, dict]:
        """The span of the Secret's document and the document."""
        wanted = self.spec.get("document")
        found = []
        for start, end in split_documents(text):
            doc = parse_yaml(text[start:end], self.name) if text[start:end].strip() else None
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                name = (doc.get("metadata") or {}).get("name") \
                    if isinstance(doc.get("metadata"), dict) else None
                if wanted is None or name == wanted:
                    found.append((start, end, doc))
        if not found:
            raise MissingKey(f"no Secret named {wanted!r} in the file" if wanted else
                             "no Secret (kind: Secret) in the file")
        if len(found) > 1:
            raise FormatError("the file has several Secrets" + (f" named {wanted!r}" if wanted
                              else ": set document to the metadata.name of one"))
        return found[0]

    @staticmethod
    def _where(doc: dict, key: str) -> str:
        for section in ("stringData", "data"):
            if isinstance(doc.get(section), dict) and key in doc[section]:
                return section
        raise MissingKey(f"no key {key} in the Secret's data or stringData")

    def get(self, text: str, keys: list[str]) -> dict:
        _start, _end, doc = self._secret(text)
        values = {}
        for key in keys:
            section = self._where(doc, key)
            value = doc[section][key]
            if section == "data":
                values[key] = decode_data(value, key)
            elif isinstance(value, str):
                values[key] = value
            else:
                raise FormatError(f"stringData.{key} is not a string")
        return values

    def set(self, text: str, values: dict) -> str:
        start, end, doc = self._secret(text)
        edits = {}
        for key, value in values.items():
            if not isinstance(value, str):
                raise FormatError(f"a Secret's value is text, not a {type(value).__name__}")
            section = self._where(doc, key)
            if section == "data":
                decode_data(doc["data"][key], key)  # a broken value is reported, not replaced
            edits[(section, key)] = encode_data(value) if section == "data" else value
        editor = YamlSyntax(self.spec)
        editor.name = self.name
        part = editor.set_paths(text[start:end], edits)
        self.warnings.extend(editor.warnings)
        return text[:start] + part + text[end:]
