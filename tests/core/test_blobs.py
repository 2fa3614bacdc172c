"""versioned_items.blobs: content staged, verified and moved into place; streamed, never whole.

Faults are real: files truncated the way an old crash left them, a child process killed with
SIGKILL in the middle of a write, a full disk (a small tmpfs where the test may mount one),
several processes putting the same bytes while others free them.
"""

import errno
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import transaction

from versioned_items import api, blobs
from versioned_items.exceptions import ContentError, ContentMissing, InvalidArgument
from versioned_items.gitimport import import_git
from versioned_items.importer import import_directory
from versioned_items.models import Blob, Version

from ..helpers import snapshot

MiB = 1 << 20


def payload(size: int, seed: int = 1) -> bytes:
    """``size`` bytes that do not compress and that a child process can make again."""
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(subfolder: str = "") -> set[str]:
    """Names of the files under CONTENT_PREFIX (or one of its subfolders) in the storage."""
    root = Path(blobs.storage().path(blobs.temporary_prefix())).parent / subfolder
    return (
        {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()
    )


def final_path(checksum: str) -> Path:
    return Path(blobs.storage().path(blobs.content_name(checksum)))


def write_final(checksum: str, data: bytes) -> None:
    """Put ``data`` under the final name of ``checksum``, as an old crash or a full disk left it."""
    path = final_path(checksum)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def app_settings(settings, **values) -> None:
    """Override some of the app's settings for the test (pytest-django's ``settings``)."""
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), **values}


def read_back(version) -> bytes:
    with api.open_content(version) as file:
        return file.read()


@pytest.fixture
def clean_storage():
    """No staged file is left behind by the test; files it stored under final names go."""
    before_tmp = stored_files("tmp")
    before = stored_files()
    yield
    assert stored_files("tmp") - before_tmp == set(), "staged files were left behind"
    root = Path(blobs.storage().path(blobs.temporary_prefix())).parent
    for name in stored_files() - before:
        (root / name).unlink()


# --- round trips and streaming ---------------------------------------------------------------


class RecordingFile:
    """A real binary file whose read() calls are recorded: the size asked for, the bytes given."""

    def __init__(self, path: Path):
        self.file = open(path, "rb")
        self.asked: list = []

    def read(self, size=-1):
        self.asked.append(size)
        return self.file.read(size)

    def close(self):
        self.file.close()


@pytest.mark.django_db
def test_put_round_trips_bytes_text_and_file_objects(tmp_path, clean_storage):
    data = payload(300_000)
    text = "naïve café ✓ " * 5000
    (tmp_path / "bin").write_bytes(data)
    (tmp_path / "txt").write_text(text, encoding="utf-8")
    with open(tmp_path / "bin", "rb") as binary, open(tmp_path / "txt", encoding="utf-8") as textfile:
        cases = {
            "bytes": (data, data),
            "bytearray": (bytearray(data), data),
            "memoryview": (memoryview(data), data),
            "str": (text, text.encode()),
            "binary file": (binary, data),
            "text file": (textfile, text.encode()),
            "BytesIO": (io.BytesIO(data), data),
            "empty": (b"", b""),
        }
        for name, (given, expected) in cases.items():
            version = api.put(f"rt/{name}", given)
            assert (version.size, version.checksum) == (len(expected), sha(expected)), name
            assert read_back(version) == expected, name
    assert Blob.objects.get(checksum=sha(data)).refcount == 5
    assert Blob.objects.get(checksum=sha(text.encode())).refcount == 2


@pytest.mark.django_db
def test_put_reads_a_file_in_bounded_chunks(tmp_path, settings, clean_storage):
    app_settings(settings, CONTENT_CHUNK_BYTES=64 * 1024)
    data = payload(3 * MiB + 5)
    (tmp_path / "big").write_bytes(data)
    source = RecordingFile(tmp_path / "big")
    try:
        version = api.put("stream/big.bin", source)
    finally:
        source.close()
    assert all(isinstance(n, int) and 0 < n <= 64 * 1024 for n in source.asked), set(source.asked)
    assert len(source.asked) == 3 * 16 + 2  # 48 full chunks, the 5 bytes, the empty read at the end
    assert read_back(version) == data


@pytest.mark.django_db
def test_put_reads_a_file_object_from_its_position(clean_storage):
    source = io.BytesIO(b"header:body")
    source.read(7)
    assert read_back(api.put("pos", source)) == b"body"


def traced_peak(call) -> int:
    """Peak bytes allocated by Python while ``call()`` runs."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.django_db
def test_put_and_import_of_a_large_file_allocate_one_chunk_not_the_file(tmp_path, settings, clean_storage):
    app_settings(settings, CONTENT_CHUNK_BYTES=256 * 1024)
    folder = tmp_path / "tree"
    folder.mkdir()
    (folder / "big.bin").write_bytes(payload(24 * MiB, seed=2))
    (folder / "other.bin").write_bytes(payload(24 * MiB, seed=3))
    with open(folder / "big.bin", "rb") as source:
        peak = traced_peak(lambda: api.put("mem/put.bin", source))
    assert peak < 4 * MiB, peak
    peak = traced_peak(lambda: import_directory(folder, under="mem/imported"))
    assert peak < 4 * MiB, peak
    assert read_back(api.lookup("mem/imported/other.bin")) == payload(24 * MiB, seed=3)


@pytest.mark.django_db
def test_unsupported_content_is_refused_and_writes_nothing(clean_storage):
    api.put("keep", b"x")
    before = snapshot()
    with pytest.raises(InvalidArgument, match="bytes, str or a file object"):
        api.put("bad", 12345)
    assert snapshot() == before


# --- files under a final name are verified before they are trusted ---------------------------


@pytest.mark.django_db
def test_a_half_written_file_under_the_final_name_is_replaced(clean_storage):
    # What a process killed mid-write (or a full disk) left with the old code: the bytes' final
    # name holds only their first 512 KiB. The old put saw the file, skipped the write and
    # recorded a version pointing at it.
    data = payload(3 * MiB, seed=4)
    write_final(sha(data), data[: 512 * 1024])
    version = api.put("half/big.bin", data)
    assert read_back(version) == data
    assert final_path(sha(data)).stat().st_size == len(data)
    assert Blob.objects.get(checksum=sha(data)).refcount == 1


@pytest.mark.django_db
def test_a_version_already_pointing_at_a_truncated_file_is_healed_by_the_next_put(clean_storage):
    data = payload(2 * MiB, seed=5)
    first = api.put("heal/a.bin", data)
    write_final(sha(data), data[:1000])  # as the old code left it: a version on a partial file
    second = api.put("heal/b.bin", data)
    assert read_back(first) == read_back(second) == data
    assert Blob.objects.get(checksum=sha(data)).refcount == 2


@pytest.mark.django_db
def test_a_small_file_of_the_right_size_but_wrong_bytes_is_replaced(clean_storage):
    data = b"small content, hashed when found"
    write_final(sha(data), b"X" * len(data))
    assert read_back(api.put("small", data)) == data


@pytest.mark.django_db
def test_a_large_file_of_the_right_size_is_trusted_without_reading_it(settings, clean_storage):
    # Above CONTENT_VERIFY_HASH_BYTES only the size is compared (vi_check hashes everything).
    app_settings(settings, CONTENT_VERIFY_HASH_BYTES=1000)
    data = payload(5000, seed=6)
    write_final(sha(data), data)
    inode = final_path(sha(data)).stat().st_ino
    assert read_back(api.put("trusted", data)) == data
    assert final_path(sha(data)).stat().st_ino == inode  # kept, not rewritten


# --- what a failed or rolled-back put leaves ---------------------------------------------------


@pytest.mark.django_db
def test_a_put_refused_after_staging_leaves_no_staged_file(clean_storage):
    version = api.put("order", b"1")
    before = snapshot()
    with pytest.raises(InvalidArgument, match="before the current"):
        api.put("order", payload(2 * MiB), mtime=version.mtime.replace(year=2000))
    assert snapshot() == before
    assert not final_path(sha(payload(2 * MiB))).exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_put_leaves_a_complete_orphan_that_the_next_put_reuses(clean_storage):
    data = payload(MiB, seed=7)
    with pytest.raises(RuntimeError), api.batch():
        api.put("rollback/a.bin", data)
        raise RuntimeError("the caller fails after the put")
    assert not Blob.objects.exists() and not Version.objects.exists()
    # The file stays for the checker's grace-period sweep: deleting it on rollback could take
    # a file that a committed version of another transaction uses.
    assert final_path(sha(data)).read_bytes() == data
    version = api.put("rollback/b.bin", data)
    assert read_back(version) == data and Blob.objects.get().refcount == 1


# --- references ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_acquire_existing_takes_freed_content_only_while_its_file_is_there(clean_storage):
    data = b"freed but not yet deleted"
    write_final(sha(data), data)  # its row went with the last reference; the file is still there
    with transaction.atomic():
        blobs.acquire_existing({sha(data): 2}, sizes={sha(data): len(data)})
    assert Blob.objects.get(checksum=sha(data)).refcount == 2

    gone = b"freed and deleted"
    with pytest.raises(ContentMissing, match=sha(gone)), transaction.atomic():
        blobs.acquire_existing({sha(gone): 1}, sizes={sha(gone): len(gone)})
    assert not Blob.objects.filter(checksum=sha(gone)).exists()

    truncated = payload(4000, seed=8)
    write_final(sha(truncated), truncated[:10])
    with pytest.raises(ContentMissing), transaction.atomic():
        blobs.acquire_existing({sha(truncated): 1}, sizes={sha(truncated): len(truncated)})


@pytest.mark.django_db
def test_copy_of_a_version_adds_a_reference(clean_storage):
    version = api.put("ref/a", b"shared")
    copy = api.copy(version.serial, "ref/b")
    assert read_back(copy) == b"shared"
    assert Blob.objects.get(checksum=version.checksum).refcount == 2


@pytest.mark.django_db
def test_delete_unreferenced_rechecks_the_row_before_deleting(clean_storage):
    kept = api.put("du/kept", b"still referenced")
    blobs.delete_unreferenced([kept.checksum])
    assert read_back(kept) == b"still referenced"

    orphan = b"nobody references this"
    write_final(sha(orphan), orphan)
    blobs.delete_unreferenced([sha(orphan)])
    assert not final_path(sha(orphan)).exists()
    assert not Blob.objects.filter(checksum=sha(orphan)).exists()


@pytest.mark.django_db(transaction=True)
def test_freed_content_is_deleted_after_commit_and_stored_again_by_the_next_put(clean_storage):
    data = payload(MiB, seed=9)
    api.remove_version(api.put("free/a.bin", data).serial)
    assert not final_path(sha(data)).exists() and not Blob.objects.exists()
    assert read_back(api.put("free/b.bin", data)) == data


# --- a full disk -----------------------------------------------------------------------------


class FullDiskStorage(FileSystemStorage):
    """A FileSystemStorage that fails like a full 2 MiB disk: a write that would take the
    folder past ``LIMIT`` bytes raises ENOSPC part-way. Used only where the test cannot mount
    a real small tmpfs (that needs root, i.e. CAP_SYS_ADMIN)."""

    LIMIT = 2 * MiB

    def _save(self, name, content_file):
        used = sum(p.stat().st_size for p in Path(self.location).rglob("*") if p.is_file())
        storage = self

        class Limited:
            def chunks(self):
                total = used
                for chunk in content_file.chunks():
                    total += len(chunk)
                    if total > storage.LIMIT:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    yield chunk

        return super()._save(name, Limited())


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    try:
        return (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
            ).returncode
            == 0
        )
    except OSError:  # no mount program
        return False


@pytest.fixture
def small_disk(tmp_path, settings):
    """The content storage on a 2 MiB filesystem: a real tmpfs when it can be mounted."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = _mount_tmpfs(mount, "2m")
    backend = "django.core.files.storage.FileSystemStorage" if mounted else f"{__name__}.FullDiskStorage"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": backend, "OPTIONS": {"location": str(mount)}},
    }
    try:
        yield mount
    finally:
        if mounted:
            subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.django_db
def test_a_full_disk_raises_a_clear_error_and_changes_nothing(small_disk):
    api.put("disk/before", b"fits")
    before = snapshot()
    data = payload(3 * MiB, seed=10)
    with pytest.raises(ContentError, match="the storage is full") as raised:
        api.put("disk/too-big.bin", data)
    assert isinstance(raised.value, OSError)
    assert snapshot() == before
    files = {p.relative_to(small_disk).as_posix() for p in small_disk.rglob("*") if p.is_file()}
    assert files == {blobs.content_name(sha(b"fits"))}  # no partial staged or final file
    # The space the failed write took is free again.
    fits = payload(int(1.5 * MiB), seed=11)
    assert read_back(api.put("disk/after.bin", fits)) == fits


# --- processes killed mid-write, and processes racing -----------------------------------------


def run_child(env: dict, name: str, *args, **popen) -> subprocess.Popen:
    """Start ``_child_<name>(*args)`` of this module in a new Python process."""
    code = (
        "import json, sys, django\n"
        "django.setup()\n"
        "from tests.core import test_blobs\n"
        f"result = test_blobs._child_{name}(*sys.argv[1:])\n"
        "print(json.dumps(result), flush=True)\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def answers(processes: list[subprocess.Popen], timeout: float = 120) -> list[dict]:
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def wait_for(condition, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


SLOW_SIZE, SLOW_STOP = 8 * MiB, 3 * MiB


def _child_slow_put(path: str) -> dict:
    """Put SLOW_SIZE bytes from a file object that stops for good after SLOW_STOP bytes."""

    class Slow:
        def __init__(self):
            self.data, self.given = payload(SLOW_SIZE, seed=12), 0

        def read(self, size=-1):
            if self.given >= SLOW_STOP:
                print("stalled", flush=True)
                time.sleep(3600)  # the parent kills us here
            piece = self.data[self.given : self.given + min(size, SLOW_STOP - self.given)]
            self.given += len(piece)
            return piece

    api.put(path, Slow())
    return {}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_kill_9_during_a_content_write_then_a_put_of_the_same_bytes(subprocess_env, clean_storage):
    data = payload(SLOW_SIZE, seed=12)
    staged_before = stored_files("tmp")
    child = run_child(subprocess_env, "slow_put", "killed/big.bin")
    assert child.stdout.readline().strip() == "stalled"
    wait_for(
        lambda: any(
            Path(blobs.storage().path(f"{blobs.temporary_prefix()}/{name}")).stat().st_size == SLOW_STOP
            for name in stored_files("tmp") - staged_before
        ),
        what="the child's staged file to hold what it read",
    )
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # Only a staged file is left (for the checker's sweep); nothing under a final name.
    left = stored_files("tmp") - staged_before
    assert len(left) == 1
    assert not final_path(sha(data)).exists()
    assert not Blob.objects.exists() and not Version.objects.exists()

    version = api.put("killed/big.bin", data)
    assert read_back(version) == data and version.checksum == sha(data)
    assert Blob.objects.get().refcount == 1
    for name in left:  # what vi_check --fix would collect once it is older than the grace period
        blobs.storage().delete(f"{blobs.temporary_prefix()}/{name}")


def _child_put_then_die_before_commit(path: str) -> dict:
    """Put 2 MiB and be killed right after the file got its final name, before the commit."""
    original = blobs._move_into_place

    def move_then_die(*args):
        original(*args)
        os.kill(os.getpid(), signal.SIGKILL)

    blobs._move_into_place = move_then_die
    api.put(path, payload(2 * MiB, seed=13))
    return {}


@pytest.mark.django_db(transaction=True)
def test_kill_9_after_the_move_before_the_commit_leaves_a_whole_file_that_is_reused(
    subprocess_env, clean_storage
):
    data = payload(2 * MiB, seed=13)
    child = run_child(subprocess_env, "put_then_die_before_commit", "dying/a.bin")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert not Blob.objects.exists() and not Version.objects.exists()
    assert final_path(sha(data)).read_bytes() == data  # whole: it was complete before the move
    version = api.put("dying/a.bin", data)
    assert read_back(version) == data and Blob.objects.get().refcount == 1


def _child_same_bytes(worker: str, rounds: str, start_file: str) -> dict:
    """Put the shared bytes, copy them, and free them again, ``rounds`` times, on paths of
    this worker only; then keep one version. Other workers do the same with the same bytes,
    so the content's row is freed and its file deleted while others put it."""
    data = payload(2 * MiB, seed=14)
    errors = []
    while not os.path.exists(start_file):
        time.sleep(0.005)
    for i in range(int(rounds)):
        try:
            version = api.put(f"same/w{worker}", data)
            if i % 3 == 0:
                api.copy(version.serial, f"same/c{worker}")
                api.remove_node(f"same/c{worker}")
            api.remove_node(f"same/w{worker}")
        except Exception as error:  # reported to the parent, which fails the test
            errors.append(f"{type(error).__name__}: {error}")
    api.put(f"same/w{worker}", data)
    return {"errors": errors}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_processes_putting_and_freeing_the_same_bytes_end_with_one_whole_file(
    subprocess_env, tmp_path, clean_storage
):
    workers, rounds = 4, 12
    data = payload(2 * MiB, seed=14)
    start = tmp_path / "start"
    processes = [run_child(subprocess_env, "same_bytes", w, rounds, start) for w in range(workers)]
    time.sleep(1)  # let them all reach the start line (they wait for the file)
    start.touch()
    results = answers(processes, timeout=240)
    assert [r["errors"] for r in results] == [[]] * workers
    assert Version.objects.filter(checksum=sha(data)).count() == workers
    assert Blob.objects.get(checksum=sha(data)).refcount == workers
    assert stored_files() >= {blobs.content_name(sha(data)).split("/", 1)[1]}
    for version in Version.objects.all():
        assert read_back(version) == data


def _child_put_once(worker: str, start_file: str) -> dict:
    while not os.path.exists(start_file):
        time.sleep(0.005)
    version = api.put(f"once/w{worker}.bin", payload(3 * MiB, seed=15))
    return {"checksum": version.checksum}


@pytest.mark.django_db(transaction=True)
def test_concurrent_puts_of_the_same_bytes_store_one_file(subprocess_env, tmp_path, clean_storage):
    workers = 4
    start = tmp_path / "start"
    staged_before = stored_files("tmp")
    processes = [run_child(subprocess_env, "put_once", w, start) for w in range(workers)]
    time.sleep(1)
    start.touch()
    results = answers(processes)
    checksum = sha(payload(3 * MiB, seed=15))
    assert {r["checksum"] for r in results} == {checksum}
    assert Blob.objects.get(checksum=checksum).refcount == workers
    finals = {name for name in stored_files() if not name.startswith("tmp/")}
    assert [name for name in finals if name.endswith(checksum)] == [
        blobs.content_name(checksum).split("/", 1)[1]
    ]
    assert stored_files("tmp") == staged_before
    assert final_path(checksum).stat().st_size == 3 * MiB


# --- imports stream ------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_unchanged_files_leave_no_staged_files(tmp_path, clean_storage):
    folder = tmp_path / "tree"
    folder.mkdir()
    (folder / "a.bin").write_bytes(payload(100_000, seed=16))
    assert import_directory(folder).new == 1
    report = import_directory(folder)
    assert (report.new, report.unchanged) == (0, 1)


@pytest.mark.django_db
def test_git_import_streams_blobs(tmp_path, settings, clean_storage):
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    app_settings(settings, CONTENT_CHUNK_BYTES=64 * 1024)
    repo = tmp_path / "repo"
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    big, small = payload(6 * MiB, seed=17), b"small\n"
    repo.mkdir()
    (repo / "big.bin").write_bytes(big)
    (repo / "small.txt").write_bytes(small)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "two files"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)
    peak = traced_peak(lambda: import_git(repo, under="git"))
    assert peak < 2 * MiB, peak
    assert read_back(api.lookup("git/big.bin")) == big
    assert read_back(api.lookup("git/small.txt")) == small


@pytest.mark.django_db
def test_text_that_cannot_be_encoded_or_decoded_is_refused(tmp_path, clean_storage):
    before = snapshot()
    with pytest.raises(InvalidArgument, match="not valid text"):
        api.put("text/surrogate", "lone \udc80 surrogate")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with (
        open(tmp_path / "latin1.txt", encoding="utf-8") as source,
        pytest.raises(InvalidArgument, match="not valid text"),
    ):
        api.put("text/latin1", source)
    assert snapshot() == before
