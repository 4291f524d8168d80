"""Refuse a submission folder that holds anything but regular files, before nbgrader touches it.

nbgrader, running as the grader, copies every file of ``submitted/STUDENT/ASSIGNMENT`` with
``shutil.copy`` (which follows symbolic links and reads devices to the end), reads the notebooks in
it and later chmods what it wrote. A symbolic link (to ``solutions/``, the gradebook, another
student's notebook, ``/dev/zero``), a FIFO (which blocks whoever opens it), a device, a socket, or a
hard link to a file outside the submission would make nbgrader read or change something the student
must not reach. :func:`check_tree` refuses all of them, and a folder too large to be a submission.

Used at three places: ``python -m coursegrade``'s intake (the submission is then graded as the
blank release with the reason), ``guard_autograde`` (installed by the course's ``nbgrader_config.py``:
plain ``nbgrader autograde`` refuses such a submission before copying anything and goes on with the
next student), and ``SandboxedExecute`` (again, before any kernel starts).
"""
import os
import stat

MAX_FILES = 200
MAX_BYTES = 32 << 20


class UnsafeSubmission(Exception):
    """The submission folder holds something that is not a plain file (or is too large)."""


def _kind(mode):
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_tree(folder, max_files=MAX_FILES, max_bytes=MAX_BYTES):
    """Raise :class:`UnsafeSubmission` unless ``folder`` is a real folder holding only regular files
    (each with one link) and folders, at most ``max_files`` files and ``max_bytes`` bytes in all.
    Never follows a link, never opens a file."""
    for path, what in ((os.path.dirname(os.path.normpath(folder)), "the student's folder"),
                       (folder, "the submission folder")):
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeSubmission(f"{what} is {_kind(st.st_mode)}, not a folder")
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeSubmission(f"{rel!r} is {_kind(st.st_mode)}; a submission may hold only plain files")
            if st.st_nlink != 1:
                raise UnsafeSubmission(f"{rel!r} is a hard link to another file ({st.st_nlink} links); a "
                                       "submission may hold only plain files")
            files += 1
            size += st.st_size
            if files > max_files or size > max_bytes:
                raise UnsafeSubmission(f"the submission holds more than {max_files} files or {max_bytes >> 20} MiB")


def submitted_folder(coursedir, assignment, student):
    return os.path.normpath(coursedir.format_path(coursedir.submitted_directory, student, assignment))


def guard_autograde():
    """Make ``nbgrader autograde`` check each submission folder with :func:`check_tree` before it
    copies or reads anything there (an unsafe submission fails with the reason; the run goes on)."""
    from nbgrader.converters.autograde import Autograde

    if getattr(Autograde.init_assignment, "_coursegrade_guarded", False):
        return
    original = Autograde.init_assignment

    def init_assignment(self, assignment_id, student_id):
        folder = submitted_folder(self.coursedir, assignment_id, student_id)
        try:
            check_tree(folder)
        except UnsafeSubmission as exc:
            msg = f"refusing to grade {student_id}'s {assignment_id}: {exc}"
            self.log.error(msg)
            raise UnsafeSubmission(msg) from None
        return original(self, assignment_id, student_id)

    init_assignment._coursegrade_guarded = True
    Autograde.init_assignment = init_assignment
