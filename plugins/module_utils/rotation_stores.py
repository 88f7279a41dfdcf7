# Copyright (c) credops.pgauth contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stores of one rotation: reading them (secrets registered as no_log as they are read),
writing a credential, and the promote - the primary first, then the others in parallel,
with every read done before the database changes (promotion.py)."""
from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.credops.pgauth.plugins.module_utils.credential import Credential
from ansible_collections.credops.pgauth.plugins.module_utils.pg_role import fetch_role
from ansible_collections.credops.pgauth.plugins.module_utils.promotion import (
    Promotion,
    read_ahead,
    same_secret,
)
from ansible_collections.credops.pgauth.plugins.module_utils.rotation_exec import (
    STEP_ERRORS,
    Executor,
    RotationError,
    Step,
)
from ansible_collections.credops.pgauth.plugins.module_utils.scram import is_scram_of
from ansible_collections.credops.pgauth.plugins.module_utils.store import (
    Store,
    StoreError,
    StoreNotFound,
    StoreValueError,
    WritePlan,
)


def store_versions(stores: list[Store], missing: list | None = None) -> dict:
    """Each store's current version id, for the report; the names of stores that hold no
    secret at all go to missing."""
    found = {}
    for store in stores:
        if store.write_only:
            found[store.name] = "write-only, not read back"
            continue
        try:
            _cred, stored = store.read("current")
            found[store.name] = stored.version if stored else None
            if stored is None and missing is not None and not store.exists():
                missing.append(store)
        except StoreError as err:
            found[store.name] = f"unreadable: {err}"
    return found


def credential_fields(cred: Credential, whole: bool = False) -> dict:
    fields = {"username": cred.username, "password": cred.password, "auth": cred.auth,
              "verifier": cred.verifier}
    if whole:
        fields.update(host=cred.host, port=cred.port, dbname=cred.dbname, sslmode=cred.sslmode)
    return fields


def with_database_verifier(cur, cred: Credential) -> Credential:
    """cred carrying the verifier the database holds for its password, when pg_authid is
    readable and that verifier was made from it; else cred as it is.  A PgBouncer with
    SCRAM pass-through (no password in [databases]) logs in to PostgreSQL with the keys of
    its auth_file's verifier, which must be the database's own (same salt): a freshly
    salted one lets clients in to PgBouncer and PgBouncer not in to the server."""
    if cur is None or not cred.username or cred.password is None:
        return cred
    state = fetch_role(cur, cred.username)
    stored = state.stored_password if state.exists and state.authid_readable else None
    return dataclasses.replace(cred, verifier=stored) if is_scram_of(stored, cred.password) \
        else cred


class RotationStores:
    """stores[0] is the primary: it holds the pending value while a rotation is in
    progress.  out: where notes go; hide(secret) registers a no_log value."""

    def __init__(self, stores: list[Store], source: Store | None, execute: Executor, hide,
                 cur=None):
        self.stores, self.primary, self.source = stores, stores[0], source
        self.execute, self.out, self.hide = execute, execute.out, hide
        # the admin cursor, for the database's verifier a verifier store is given
        self.cur = cur
        self._verifier_lock = threading.Lock()  # the parallel promote shares the one cursor

    def by_name(self, names) -> list[Store]:
        wanted = set(names)
        return [store for store in self.stores if store.name in wanted]

    def pending_capable(self) -> list[Store]:
        return [store for store in self.stores[1:] if store.supports_pending]

    def versions(self) -> dict:
        return store_versions(self.stores)

    # -- reading ---------------------------------------------------------------------------
    def read(self, store: Store, stage: str) -> Credential | None:
        cred, _stored = store.read(stage)
        if cred is not None and cred.password:
            self.hide(cred.password)
        if cred is not None and cred.verifier:
            self.hide(cred.verifier)
        return cred

    def read_or_none(self, store: Store, stage: str) -> Credential | None:
        """A store whose value cannot be read as a credential (a broken URL) counts as
        holding nothing: the rotation replaces its value."""
        try:
            return self.read(store, stage)
        except StoreValueError as err:
            self.out.note(f"{store.name}: {stage} value unreadable, replaced ({err})")
            return None

    def differing_from(self, cred: Credential) -> list[Store]:
        """The stores whose current credential differs from cred (user or password).  A
        write-only store cannot be compared: it is written by a rotation, never converged
        (else every run would rewrite it and never be idempotent)."""
        return [store for store in self.stores if not store.write_only
                and not same_secret(self.read_or_none(store, "current"), cred)]

    # -- writing ---------------------------------------------------------------------------
    def plan(self, store: Store, cred: Credential, stage: str = "current") -> WritePlan:
        if store.write_only:
            # nothing to merge into: the whole credential (host, port, dbname too)
            return store.plan_write(credential_fields(cred, whole=True), stage)
        try:
            return store.plan_write(credential_fields(cred), stage)
        except StoreError:
            # an unreadable value is replaced by the whole credential (host, port, dbname too)
            return store.plan_write(credential_fields(cred, whole=True), stage,
                                    replace_unreadable=True)

    def write(self, store: Store, cred: Credential, stage: str) -> None:
        plan = self.plan(store, cred, stage)
        if plan.changed:
            store.write(plan, stage)

    def stage_others(self, stores: list[Store], new: Credential) -> None:
        for store in stores:
            # a secret with no value (a deleted Vault version) is written at promote
            if self.read_or_none(store, "current") is not None:
                self.write(store, new, "pending")

    def promote_store(self, store: Store, cred: Credential) -> None:
        """pending -> current where the store has a pending stage holding cred, else write
        cred as current (files, or a pending that is missing or stale)."""
        if store.holds_verifier:
            with self._verifier_lock:
                cred = with_database_verifier(self.cur, cred)
            if cred.verifier:
                self.hide(cred.verifier)
        if store.write_only:
            self.write(store, cred, "current")
            return
        if store.supports_pending:
            pending = self.read_or_none(store, "pending")
            if same_secret(pending, cred):
                store.promote()
                return
            if store.pending() is not None:
                store.discard_pending()
        if not same_secret(self.read_or_none(store, "current"), cred):
            self.write(store, cred, "current")

    def discard_pendings(self) -> list[str]:
        errors = []
        for store in [self.primary, *self.pending_capable()]:
            try:
                if store.pending() is not None:
                    store.discard_pending()
            except StoreError as err:
                errors.append(str(err))
        return errors

    # -- promote ---------------------------------------------------------------------------
    def read_ahead(self, cred: Credential) -> dict[str, Promotion]:
        """Each store's promote as writes only, where the store allows it (see
        promotion.py); read before the database changes."""
        found = {}
        # a verifier store waits for promote: the database's new verifier exists only then
        for store in (store for store in self.stores if not store.holds_verifier):
            promotion = read_ahead(store, cred, self.plan)
            if promotion is not None:
                found[store.name] = promotion
        return found

    def promote_everywhere(self, cred: Credential, ahead: dict | None = None) -> None:
        """Primary first (it is what a resumed run trusts), then the others in parallel:
        the window in which stores disagree is as short as the slowest store.  With ahead
        (promotes read before the database changed) each store only writes; the pending
        values are dropped after every store has switched."""
        ahead = ahead or {}
        execute, primary = self.execute, ahead.get(self.primary.name)
        name = "promote:" + self.primary.name
        if primary is not None:
            execute.run(name, [self.primary], primary.switch)
        else:
            execute.run(name, [self.primary], self.promote_store, self.primary, cred)
        others = self.stores[1:]
        if execute.check_mode:
            for store in others:
                execute.run("promote:" + store.name, [store], self.promote_store, store, cred)
            return
        # stores that share a file switch one after the other, the rest in parallel
        groups: dict = {}
        for store in others:
            groups.setdefault(store.shared_resource() or store.name, []).append(store)
        self._first_lock, self._first = threading.Lock(), True
        with ThreadPoolExecutor(max_workers=max(len(groups), 1)) as pool:
            done: dict = {}
            for future in [pool.submit(self._promote_group, group, cred, ahead)
                           for group in groups.values()]:
                done.update(future.result())
            errors = self._record_promotes(others, done)
            execute.boundary("switched")
            # every store holds the new credential now: a pending value left behind is
            # tidied by the next run, so failing to drop one is a note, not a failure
            for future in [pool.submit(self._tidy, store_name, promotion)
                           for store_name, promotion in ahead.items()]:
                try:
                    future.result()
                except STEP_ERRORS as err:
                    self.out.notes.append(f"the pending value was not dropped ({err}); the "
                                          "next run drops it")
        if errors:
            raise RotationError("promote failed on some stores; the database and the primary "
                                "store hold the new credential, run again to finish: "
                                + "; ".join(errors))
        for store in others:
            execute.boundary("promote:" + store.name)

    def _record_promotes(self, others: list[Store], done: dict) -> list[str]:
        errors = []
        for store in others:
            step = Step("promote:" + store.name, [store.name])
            seconds, err = done[store.name]
            if err is None:
                step.seconds = seconds
            else:
                step.status, step.detail = "failed", str(err)
                errors.append(str(err) if not isinstance(err, StoreNotFound) else
                              f"store {store.name!r}: the secret disappeared")
            self.execute.record(step)
        return errors

    def _promote_group(self, group: list[Store], cred: Credential, ahead: dict) -> dict:
        """store name -> (seconds, error or None), the stores one after the other.  The
        boundaries switched:<store> and switched_first (the first store of all groups to
        switch) lie inside the parallel promote: the stores of other groups are still
        being written then (switched_first: all but that one, barring a tie)."""
        done = {}
        for store in group:
            promotion = ahead.get(store.name)
            try:
                if promotion is not None:
                    seconds = Executor.timed(promotion.switch)
                else:
                    seconds = Executor.timed(self.promote_store, store, cred)
                done[store.name] = (seconds, None)
            except STEP_ERRORS as err:
                done[store.name] = (0.0, err)
                continue
            self.execute.boundary("switched:" + store.name)
            with self._first_lock:
                first, self._first = self._first, False
            if first:  # the kill point inside the parallel promote: one store switched
                self.execute.boundary("switched_first")
        return done

    def _tidy(self, name: str, promotion: Promotion) -> None:
        promotion.tidy()
        self.execute.boundary("tidied:" + name)
