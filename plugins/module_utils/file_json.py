# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON files: re-serialized with the indentation found in the file (JSON has no comments
to lose; key order is kept)."""
from __future__ import annotations

import json
import re

from ansible_collections.credops.pgauth.plugins.module_utils.file_syntax import (
    FormatError,
    Syntax,
    path_get,
    path_set,
)


def parse_json_file(text: str):
    try:
        return json.loads(text) if text.strip() else {}
    except RecursionError:
        raise FormatError("the file is not valid json (nested too deeply)") from None
    except ValueError as err:
        raise FormatError("the file is not valid json", getattr(err, "lineno", None)) from None


class JsonSyntax(Syntax):
    name = "json"

    def get(self, text: str, keys: list[str]) -> dict:
        data = parse_json_file(text)
        return {key: path_get(data, key.split(".")) for key in keys}

    def set(self, text: str, values: dict) -> str:
        data = parse_json_file(text)
        for key, value in values.items():
            path_set(data, key.split("."), value)
        indent = re.search(r"\n( +|\t)\S", text)
        return json.dumps(data, indent=indent.group(1) if indent else None,
                          ensure_ascii=False) + ("\n" if text.endswith("\n") else "")
