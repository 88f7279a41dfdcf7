"""The store dict is documented twice (sanity wants literal doc strings): keep both in step
with each other and with the argument spec modules validate against."""
from __future__ import annotations

import yaml

from ansible_collections.credops.pgauth.plugins.doc_fragments.store import ModuleDocFragment
from ansible_collections.credops.pgauth.plugins.module_utils.store import STORE_OPTION_SPEC
from ansible_collections.credops.pgauth.plugins.module_utils.store_params import STORE_REF_SPEC


def _store_docs():
    store = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["store"]["suboptions"]
    ref = yaml.safe_load(ModuleDocFragment.PASSWORD_FROM)["options"]["password_from"]
    return store, ref


def test_both_fragments_document_the_same_store_keys():
    store, ref = _store_docs()
    assert ref["suboptions"]["store"]["suboptions"] == store


def test_fragments_match_the_argument_spec():
    store, ref = _store_docs()
    assert set(store) == set(STORE_OPTION_SPEC)
    for name, spec in STORE_OPTION_SPEC.items():
        assert store[name]["type"] == spec["type"], name
        assert bool(store[name].get("required")) == bool(spec.get("required")), name
        assert store[name].get("choices") == spec.get("choices"), name
    assert set(ref["suboptions"]) == set(STORE_REF_SPEC)
