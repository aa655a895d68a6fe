"""app.atomic: a failed write leaves the old file whole; a good one replaces it."""
import os
import stat

import pytest

from app.atomic import atomic_writer, write_atomic


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    write_atomic(target, "new\r\n")
    assert target.read_bytes() == b"new\r\n"
    write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_failure_midway_keeps_the_old_file(tmp_path):
    target = tmp_path / "refs"
    target.write_text("abc123")
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as fh:
            fh.write("half of the new")
            raise RuntimeError("disk full")
    assert target.read_text() == "abc123"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refs"]


def test_existing_mode_is_kept_and_new_files_follow_the_umask(tmp_path):
    target = tmp_path / "run.sh"
    target.write_text("#!/bin/sh\n")
    target.chmod(0o750)
    write_atomic(target, "#!/bin/sh\necho hi\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    fresh = tmp_path / "fresh.txt"
    old = os.umask(0o022)
    try:
        write_atomic(fresh, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
