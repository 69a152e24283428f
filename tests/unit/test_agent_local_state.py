import pytest

from workers.journal import Journal
from workers.local_paths import CapturePathRefused, resolve_capture_path


def test_a_capture_begins_once_however_often_it_is_delivered(tmp_path):
    journal = Journal(tmp_path / "journal")
    assert journal.begin("run-1")
    assert not journal.begin("run-1")
    assert not Journal(tmp_path / "journal").begin("run-1"), "a restarted agent remembers"
    assert not journal.finished("run-1")
    journal.finish("run-1")
    assert journal.finished("run-1")
    assert journal.begin("run-2")


def test_paths_stay_inside_the_capture_folder(tmp_path):
    assert resolve_capture_path(tmp_path, "a/b/c.cap") == tmp_path.resolve() / "a" / "b" / "c.cap"
    assert (tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("relative", ["../x.cap", "/etc/x.cap", "a/../../x.cap", "", "a\x00.cap"])
def test_paths_that_leave_the_folder_are_refused(tmp_path, relative):
    with pytest.raises(CapturePathRefused):
        resolve_capture_path(tmp_path, relative)


def test_symlinks_in_the_capture_folder_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(CapturePathRefused):
        resolve_capture_path(root, "link/x.cap")
    (outside / "target.cap").write_bytes(b"")
    (root / "file.cap").symlink_to(outside / "target.cap")
    with pytest.raises(CapturePathRefused):
        resolve_capture_path(root, "file.cap")
    assert list(outside.iterdir()) == [outside / "target.cap"]
