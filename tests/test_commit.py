"""The commit protocol's rounds under races and lost answers, on the local folder store: what is
on disk under silver/ is exactly what the object's manifest names current, whatever happened."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from elt_sdk.cli import main
from elt_sdk.commit import (COMMITTED, DUPLICATE, SILVER, WAITING, Attempt, Committer, OutputFile, failure_key,
                             manifest_key)
from elt_sdk.source import ObjectVersion, SourceRef
from elt_sdk.store import Conflict, LocalStore

from conftest import ThrottlesFirstSilverDelete

KEY = "bronze/shipments/a.jsonl"
V1 = ObjectVersion("etag-1", "0001", 1)
V2 = ObjectVersion("etag-2", "0002", 2)
V3 = ObjectVersion("etag-3", "0003", 3)


def ref(version: ObjectVersion = V1) -> SourceRef:
    return SourceRef(f"file:///{KEY}", version.etag, 0, KEY, version)


def attempt(tmp: Path, committer: Committer, name: str, version: ObjectVersion = V1, parts: int = 2) -> Attempt:
    """An attempt whose silver files are staged (as the transform's are, before its commit)."""
    files = []
    for part in range(parts):
        local = tmp / f"{name}-{part}.parquet"
        local.write_bytes(f"{name} part {part}".encode())
        f = OutputFile(SILVER, "shipments", "2025-06-01", part, 10, local=local)
        files.append(committer.stage(f, ref(version), name))
    return Attempt(ref(version), files, {"shipments": {"written": 10 * parts}}, {}, 1, name)


def silver_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "silver").rglob("*") if p.is_file()}


def manifest(root: Path) -> dict:
    return json.loads((root / manifest_key(KEY)).read_text())


def test_an_attempt_that_loses_its_last_write_removes_the_files_it_put(tmp_path):
    """Attempt A writes pending, then B commits the same version while A copies: B's garbage
    collection ran before A's files existed, so only A can remove them."""
    root = tmp_path / "out"
    store = LocalStore(root)

    class Racing(Committer):
        raced = False

        def _promote(self, finals):
            if not Racing.raced:
                Racing.raced = True
                assert Committer(store).commit(attempt(tmp_path, Committer(store), "b")).status == COMMITTED
            super()._promote(finals)

    a = Racing(store)
    outcome = a.commit(attempt(tmp_path, a, "a"))
    assert outcome.status == COMMITTED and Racing.raced
    current = manifest(root)["current"]["files"]["silver"]
    assert silver_files(root) == set(current) and len(current) == 2
    assert all(Path(root / k).read_bytes().startswith(b"a part") for k in current)


def test_a_last_write_that_landed_but_answered_conflict_keeps_the_commit(tmp_path):
    """A retried conditional write whose first try landed answers 412: the manifest names this
    round current, so the commit stands and its files stay."""
    root = tmp_path / "out"

    class LostAnswer(LocalStore):
        calls = 0

        def put_if(self, key, data, match):
            token = super().put_if(key, data, match)
            LostAnswer.calls += 1
            if LostAnswer.calls == 2:  # step 4 of the first round
                raise Conflict(key)
            return token

    store = LostAnswer(root)
    c = Committer(store)
    outcome = c.commit(attempt(tmp_path, c, "a"))
    assert outcome.status == COMMITTED
    doc = manifest(root)
    assert doc["pending"] is None and silver_files(root) == set(doc["current"]["files"]["silver"])
    assert len(silver_files(root)) == 2 and LostAnswer.calls == 2  # one round: nothing copied again


def test_a_staged_file_gone_because_another_attempt_committed_is_a_duplicate(tmp_path):
    root = tmp_path / "out"
    store = LocalStore(root)
    c = Committer(store)
    late = attempt(tmp_path, c, "late")
    assert c.commit(attempt(tmp_path, c, "first")).status == COMMITTED
    committed = silver_files(root)
    store.delete([late.files[1].staged])  # the winner's clean-up took it
    assert Committer(store).commit(late).status == DUPLICATE
    assert silver_files(root) == committed == set(manifest(root)["current"]["files"]["silver"])


def test_repair_removes_what_a_crashed_commit_left_visible(tmp_path):
    root = tmp_path / "out"
    store = LocalStore(root)
    c = Committer(store)
    assert c.commit(attempt(tmp_path, c, "v1")).status == COMMITTED
    good = silver_files(root)

    class Killed(Committer):
        def _promote(self, finals):
            super()._promote(finals)
            raise RuntimeError("killed between steps 3 and 4")

    k = Killed(store)
    try:
        k.commit(attempt(tmp_path, k, "v2", V2))
    except RuntimeError:
        pass
    assert len(silver_files(root)) == 4 and manifest(root)["pending"]
    runner = CliRunner()
    young = runner.invoke(main, ["repair", "--silver", str(root), "--json"])  # default: older than 1h
    assert young.exit_code == 0, young.output
    assert json.loads(young.stdout)["manifests"] == 0 and len(silver_files(root)) == 4
    done = runner.invoke(main, ["repair", "--silver", str(root), "--older-than", "0", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["files_removed"] == 2
    assert silver_files(root) == good == set(manifest(root)["current"]["files"]["silver"])
    bad = runner.invoke(main, ["repair", "--silver", str(root), "--older-than", "soon"])
    assert bad.exit_code == 2 and "--older-than" in bad.output


def test_no_failure_marker_for_a_version_a_newer_one_replaced(tmp_path):
    root = tmp_path / "out"
    store = LocalStore(root)
    c = Committer(store)
    assert c.commit(attempt(tmp_path, c, "v2", V2)).status == COMMITTED
    assert c.mark_failed(ref(V1), "boom") is None
    assert not (root / "quarantine").exists() and manifest(root).get("failed") is None
    assert c.mark_failed(ref(ObjectVersion("etag-3", "0003", 3)), "boom") is not None


def test_no_failure_marker_for_a_version_whose_rows_are_in_silver(tmp_path):
    """v2 landed, then its message failed for good (step 5's delete refused on every receive, or
    a replay of v2 failing): it ends in the DLQ, but no marker may say v2 never reached silver."""
    root = tmp_path / "out"
    store = LocalStore(root)
    c = Committer(store)
    for name, version in (("v1", V1), ("v2", V2)):
        assert c.commit(attempt(tmp_path, c, name, version)).status == COMMITTED
    assert c.mark_failed(ref(V2), "AccessDenied") is None
    assert not (root / failure_key(KEY)).exists() and manifest(root).get("failed") is None
    # the Iceberg committer marks a version its table never took, current in the manifest or not
    assert c.mark_failed(ref(V2), "commit failed", even_if_current=True) == failure_key(KEY)


def test_own_files_a_lost_round_could_not_delete_are_collected_by_the_next(tmp_path):
    """The race above, and the losing attempt's delete of its own files fails once (S3 503)."""
    root = tmp_path / "out"
    store = LocalStore(root)

    class FlakyDelete(LocalStore):
        fail = False

        def delete(self, keys):
            if FlakyDelete.fail and any(k.startswith("silver/") for k in keys):
                FlakyDelete.fail = False
                raise OSError("SlowDown")
            return super().delete(keys)

    class Racing(Committer):
        raced = False

        def _promote(self, finals):
            first = not Racing.raced
            if first:
                Racing.raced = True
                assert Committer(store).commit(attempt(tmp_path, Committer(store), "b")).status == COMMITTED
            super()._promote(finals)
            FlakyDelete.fail = first

    a = Racing(FlakyDelete(root))
    assert a.commit(attempt(tmp_path, a, "a")).status == COMMITTED
    assert silver_files(root) == set(manifest(root)["current"]["files"]["silver"])


def test_a_landed_last_write_never_overwrites_what_came_after_it(tmp_path):
    """A's last write lands but answers Conflict; before A looks, B (a newer version) writes its
    pending entry, puts its files and dies. A's commit stands and B's entry stays for repair."""
    root = tmp_path / "out"
    plain = LocalStore(root)
    c0 = Committer(plain)
    assert c0.commit(attempt(tmp_path, c0, "v0", ObjectVersion("etag-0", "0000", 0))).status == COMMITTED

    class Killed(Committer):
        def _promote(self, finals):
            super()._promote(finals)
            raise RuntimeError("killed between steps 3 and 4")

    class LostAnswer(LocalStore):
        calls = 0

        def put_if(self, key, data, match):
            token = super().put_if(key, data, match)
            LostAnswer.calls += 1
            if LostAnswer.calls == 2:
                b = Killed(plain)
                try:
                    b.commit(attempt(tmp_path, b, "b", V2))
                except RuntimeError:
                    pass
                raise Conflict(key)
            return token

    a = Committer(LostAnswer(root))
    assert a.commit(attempt(tmp_path, a, "a", V1)).status == COMMITTED
    doc = manifest(root)
    assert doc["pending"] and doc["pending"]["version"]["etag"] == "etag-2"  # B's entry kept
    assert Committer(plain).repair(0)["files_removed"] >= 2
    assert silver_files(root) == set(manifest(root)["current"]["files"]["silver"])
    assert all((root / k).read_bytes().startswith(b"a part") for k in manifest(root)["current"]["files"]["silver"])


class CountingStore(LocalStore):
    """Counts manifest reads and conditional writes (each a request on S3)."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.reads, self.writes, self._writing = 0, 0, False

    def get_bytes(self, key):
        if key.startswith("_elt/objects/") and not self._writing:  # not the folder store's own compare
            self.reads += 1
        return super().get_bytes(key)

    def put_if(self, key, data, match):
        self.writes += 1
        self._writing = True
        try:
            return super().put_if(key, data, match)
        finally:
            self._writing = False


def test_an_object_assumed_new_commits_without_reading_its_manifest(tmp_path):
    root = tmp_path / "out"
    store = CountingStore(root)
    c = Committer(store)
    first = attempt(tmp_path, c, "a")
    first.skip_if_current = True
    c.assume_new(first.source)
    assert c.commit(first).status == COMMITTED
    assert (store.reads, store.writes) == (0, 2)  # pending and current, no read
    assert silver_files(root) == set(manifest(root)["current"]["files"]["silver"]) and len(silver_files(root)) == 2


def test_a_duplicate_delivery_assumed_new_ends_duplicate_and_leaves_silver_as_it_was(tmp_path):
    """The refused first write sends the round back to reading: the manifest names this very
    version current, so the duplicate's files go and the committed ones stay."""
    root = tmp_path / "out"
    store = CountingStore(root)
    assert Committer(store).commit(attempt(tmp_path, Committer(store), "a")).status == COMMITTED
    committed = silver_files(root)
    store.reads = store.writes = 0
    c = Committer(store)
    dup = attempt(tmp_path, c, "dup")
    dup.skip_if_current = True
    c.assume_new(dup.source)
    assert c.commit(dup).status == DUPLICATE
    assert (store.reads, store.writes) == (1, 1)  # the refused write, then the read that settles it
    assert silver_files(root) == committed == set(manifest(root)["current"]["files"]["silver"])
    assert not list((root / "_elt" / "staging").rglob("*dup*"))


def test_a_newer_version_assumed_new_replaces_the_older_one(tmp_path):
    """A key that has a manifest costs one refused write more; the commit goes on as usual."""
    root = tmp_path / "out"
    store = LocalStore(root)
    assert Committer(store).commit(attempt(tmp_path, Committer(store), "old", V1)).status == COMMITTED
    c = Committer(store)
    newer = attempt(tmp_path, c, "new", V2)
    newer.skip_if_current = True
    c.assume_new(newer.source)
    assert c.commit(newer).status == COMMITTED
    current = manifest(root)["current"]
    assert current["version"]["etag"] == "etag-2"
    assert silver_files(root) == set(current["files"]["silver"])
    assert all((root / k).read_bytes().startswith(b"new part") for k in current["files"]["silver"])


class FailingDelete(ThrottlesFirstSilverDelete, LocalStore):
    """A local folder whose first delete of silver files fails."""


def commit_failing_in_step_5(tmp_path: Path, store: FailingDelete, name: str, version: ObjectVersion) -> None:
    """Commit ``version`` through step 4; its step-5 delete fails (``store`` is fresh)."""
    c = Committer(store)
    with pytest.raises(RuntimeError, match="SlowDown"):
        c.commit(attempt(tmp_path, c, name, version))


def test_a_redelivery_finishes_the_garbage_a_failed_step_5_left_readable(tmp_path):
    """Step 4 names v2 current, then its delete of v1's files fails and the message comes back:
    the redelivery finds v2 current and must still take v1's rows away, whichever check sees it."""
    for check in ("committed", "skip_if_current"):
        root = tmp_path / check / "out"
        store = FailingDelete(root)
        assert Committer(store).commit(attempt(tmp_path, Committer(store), "v1", V1)).status == COMMITTED
        commit_failing_in_step_5(tmp_path, store, "v2", V2)
        current = set(manifest(root)["current"]["files"]["silver"])
        assert len(silver_files(root)) == 4 and manifest(root)["garbage"]["silver"]  # v1's rows still readable
        again = Committer(store)
        if check == "committed":
            done = again.committed(ref(V2), {})
        else:
            dup = attempt(tmp_path, again, "dup", V2)
            dup.skip_if_current = True
            done = again.commit(dup)
        assert silver_files(root) == current and not any(manifest(root)["garbage"].values())
        # v2's partitions are ready only now: the duplicate that finished its commit carries them
        assert done is not None and done.status == DUPLICATE
        assert {k: set(v) for k, v in done.partitions.items()} == {("shipments", "2025-06-01"): current}
        assert done.rows == {("shipments", "2025-06-01"): 20}
        # ... and a duplicate with nothing left to finish announces nothing
        plain = Committer(store).committed(ref(V2), {})
        assert plain is not None and (plain.status, plain.partitions, plain.rows) == (DUPLICATE, {}, {})


def test_step_5_done_is_written_down_even_when_the_manifest_changed_meanwhile(tmp_path):
    """Between step 4 and step 5's write another writer changed the manifest (a compaction's
    claim): step 5 reads it again and writes itself done, keeping that change, so no later
    delivery finishes it again (deleting again, announcing the partitions twice). A manifest
    keeps no partitions once its step 5 is done, nor ever where it had nothing to do."""
    root = tmp_path / "out"
    store = LocalStore(root)
    first = Committer(store).commit(attempt(tmp_path, Committer(store), "v1", V1))
    assert first.status == COMMITTED and "partitions" not in manifest(root)["current"]

    class Claimed(Committer):
        def _clean_up(self, key, garbage, failed, version):
            doc = manifest(root)
            assert doc["current"]["partitions"]  # kept until step 5 is done
            doc["current"]["compacted"] = {"silver/x.parquet": "_elt/partitions/shipments/2025-06-01.json"}
            (root / manifest_key(KEY)).write_text(json.dumps(doc))  # a new token: step 5's write conflicts
            return super()._clean_up(key, garbage, failed, version)

    c = Claimed(store)
    done = c.commit(attempt(tmp_path, c, "v2", V2))
    assert done.status == COMMITTED and done.partitions
    after = manifest(root)
    assert after["garbage"] == {} and "partitions" not in after["current"]
    assert after["current"]["compacted"]  # the other writer's change stands
    again = Committer(store).committed(ref(V2), {})
    assert again is not None and again.partitions == {}  # announced once, by the commit


def chunk_attempt(tmp: Path, version: ObjectVersion, chunk: int, plugin: str) -> Attempt:
    """Chunk ``chunk`` of 2 of ``version``, written by plugin version ``plugin``."""
    local = tmp / f"{version.etag}-{plugin}-c{chunk}.parquet"
    local.write_bytes(f"{plugin} chunk {chunk}".encode())
    source = SourceRef(f"file:///{KEY}", version.etag, chunk, KEY, version)
    return Attempt(source, [OutputFile(SILVER, "shipments", "2025-06-01", 0, 10, chunk=chunk, local=local)],
                   {"shipments": {"written": 10}}, {"shipments": plugin}, 2, f"{plugin}{chunk}")


def test_a_chunked_commit_whose_step_5_fails_leaves_no_chunk_records_for_a_replay(tmp_path):
    """v2 in two chunks lands, but step 5's delete of v1's files fails. Its chunk records are
    spent all the same: a replay of v2 by a newer plugin version must wait for both of its own
    chunks, not commit its first one with the old attempt's other chunk."""
    root = tmp_path / "out"
    store = FailingDelete(root)
    assert Committer(store).commit(chunk_attempt(tmp_path, V1, 0, "p1")).status == WAITING
    assert Committer(store).commit(chunk_attempt(tmp_path, V1, 1, "p1")).status == COMMITTED
    assert Committer(store).commit(chunk_attempt(tmp_path, V2, 0, "p1")).status == WAITING
    with pytest.raises(RuntimeError, match="SlowDown"):
        Committer(store).commit(chunk_attempt(tmp_path, V2, 1, "p1"))
    assert not list((root / "_elt" / "chunks").rglob("*.json"))
    assert Committer(store).commit(chunk_attempt(tmp_path, V2, 1, "p2")).status == WAITING
    assert Committer(store).commit(chunk_attempt(tmp_path, V2, 0, "p2")).status == COMMITTED
    current = manifest(root)["current"]
    assert current["fingerprint"] == {"shipments": "p2"}
    assert sorted((root / k).read_bytes() for k in current["files"]["silver"]) == [b"p2 chunk 0", b"p2 chunk 1"]


def test_a_redelivery_retires_the_failure_marker_a_failed_step_5_left(tmp_path):
    """v2 never reached silver (its marker says why); v3 lands but its step 5 fails before the
    marker goes: the redelivery that finds v3 current removes it, as a landing version does."""
    root = tmp_path / "out"
    store = FailingDelete(root)
    assert Committer(store).commit(attempt(tmp_path, Committer(store), "v1", V1)).status == COMMITTED
    assert Committer(store).mark_failed(ref(V2), "boom") == failure_key(KEY)
    commit_failing_in_step_5(tmp_path, store, "v3", V3)
    assert (root / failure_key(KEY)).exists() and manifest(root)["failed"]["version"]["etag"] == "etag-2"
    assert Committer(store).committed(ref(V3), {}) is not None
    assert not (root / failure_key(KEY)).exists() and manifest(root)["failed"] is None
    assert silver_files(root) == set(manifest(root)["current"]["files"]["silver"])


def test_an_older_version_landing_keeps_a_newer_versions_failure_marker(tmp_path):
    """v3 failed; v2, older, lands after it (v3 never became current, so v2 may): the marker
    still tells why v3 is not in silver, and the manifest still names it."""
    root = tmp_path / "out"
    store = LocalStore(root)
    assert Committer(store).commit(attempt(tmp_path, Committer(store), "v1", V1)).status == COMMITTED
    assert Committer(store).mark_failed(ref(V3), "boom") == failure_key(KEY)
    assert Committer(store).commit(attempt(tmp_path, Committer(store), "v2", V2)).status == COMMITTED
    assert (root / failure_key(KEY)).exists() and manifest(root)["failed"]["version"]["etag"] == "etag-3"
    assert Committer(store).commit(attempt(tmp_path, Committer(store), "v3", V3)).status == COMMITTED
    assert not (root / failure_key(KEY)).exists() and manifest(root)["failed"] is None
