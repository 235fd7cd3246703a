"""Host-side file operations inside a guest's root filesystem that never leave it.

tritonsim runs as root and a guest is not trusted: every name under a machine's root
(its overlay, or the copy a snapshot makes of it) may be a symlink the guest planted to
make the host read, write or delete the host's own files (``var/log/journal -> /``).
Whatever the host does to a guest's files goes through GuestRoot:

- A path is walked one component at a time from a descriptor of the root, each
  directory opened with ``openat(O_DIRECTORY | O_NOFOLLOW)`` relative to the one
  before. A symlink met on the way to a directory is resolved as the guest itself
  would see it: an absolute target starts again at the guest's root and ``..`` never
  climbs above it (what openat2's RESOLVE_IN_ROOT does); at most 40 of them.
- The last component, the name acted on, is never followed: remove() unlinks a
  symlink itself, write_file() and symlink() replace it (a new file made with
  ``O_CREAT | O_EXCL | O_NOFOLLOW``, then ``renameat`` over the name), modes are set
  with fchmod on our own descriptor.
- Trees are removed descriptor by descriptor (unlinkat / rmdir with dir_fd), never
  crossing into another filesystem.

What cannot be done that way (a symlink loop, a file where a directory must be, a
directory where a file is to be written) raises GuestPathError, one line naming the
machine and the path.
"""

import errno
import fnmatch
import os
import secrets
import stat

from .errors import HostError

MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class GuestPathError(HostError):
    """A host-side operation on a guest path was refused (it would not stay inside the guest)."""


def _parts(path):
    return [p for p in path.split("/") if p not in ("", ".")]


class GuestRoot:
    """A guest's root directory; paths are relative to it ("etc/hostname" or "/etc/hostname").

    label names the guest in errors, e.g. "machine 1234" (default: the root's host path).
    Use as a context manager, or call close().
    """

    def __init__(self, root, label=None):
        self.root = os.path.abspath(root)
        self.label = label or self.root
        self._fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._dev = os.fstat(self._fd).st_dev

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def error(self, path, why):
        return GuestPathError("%s: guest path /%s: %s" % (self.label, "/".join(_parts(path)), why))

    # ------------------------------------------------------------ walking

    def _walk(self, path, create=False, mode=0o755, shown=None):
        """A new descriptor of directory `path`, resolved inside the root.

        Missing directories are made (mode) if create, else FileNotFoundError;
        NotADirectoryError if some component is not a directory. shown: the path
        errors name (the one the caller acts on).
        """
        shown = path if shown is None else shown
        todo = _parts(path)
        stack = [os.dup(self._fd)]     # the directories from the root down to here
        links = retries = 0
        try:
            while todo:
                name = todo.pop(0)
                if name == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                try:
                    fd = os.open(name, _DIR_FLAGS, dir_fd=stack[-1])
                except FileNotFoundError:
                    if not create:
                        raise
                    retries += 1
                    if retries > 10:
                        raise self.error(shown, "%s keeps disappearing" % name) from None
                    try:
                        os.mkdir(name, mode, dir_fd=stack[-1])
                    except FileExistsError:
                        pass                # a dangling symlink: followed on the next try
                    todo.insert(0, name)
                    continue
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        raise NotADirectoryError(
                            errno.ENOTDIR, "%s is not a directory" % name) from None
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise self.error(shown, "too many levels of symbolic links") from None
                    target = os.readlink(name, dir_fd=stack[-1])
                    if target.startswith("/"):   # absolute: from the guest's root
                        for extra in stack[1:]:
                            os.close(extra)
                        del stack[1:]
                    todo[:0] = _parts(target)
                    continue
                stack.append(fd)
            return os.dup(stack[-1])
        finally:
            for fd in stack:
                os.close(fd)

    def _parent(self, path, create=False, mode=0o755):
        """(descriptor of the directory holding the last component, its name)."""
        parts = _parts(path)
        if not parts or parts[-1] == "..":
            raise self.error(path, "not a name inside the guest")
        try:
            return self._walk("/".join(parts[:-1]), create, mode, shown=path), parts[-1]
        except NotADirectoryError as e:
            if not create:
                raise
            raise self.error(path, e.strerror) from None

    # ------------------------------------------------------------ operations

    def remove(self, path):
        """Remove the last component (file, symlink itself, or whole directory); False if absent."""
        try:
            pfd, name = self._parent(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            return self._remove_tree(pfd, name, path)
        finally:
            os.close(pfd)

    def remove_matching(self, directory, pattern):
        """Remove the entries of directory whose names match the glob pattern; their names."""
        try:
            fd = self._walk(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
        try:
            names = sorted(n for n in os.listdir(fd) if fnmatch.fnmatchcase(n, pattern))
            for name in names:
                self._remove_tree(fd, name, directory + "/" + name)
            return names
        finally:
            os.close(fd)

    def clear_dir(self, path):
        """Remove everything inside directory path (kept itself); nothing if there is none."""
        try:
            fd = self._walk(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            self._check_same_fs(fd, path)
            self._remove_tree(fd, None, path)
        finally:
            os.close(fd)

    def makedirs(self, path, mode=0o755, chmod=None):
        """Make directory path and missing parents (mode); chmod: set this mode on it too."""
        try:
            fd = self._walk(path, create=True, mode=mode)
        except NotADirectoryError as e:
            raise self.error(path, e.strerror) from None
        try:
            if chmod is not None:
                os.fchmod(fd, chmod)
        finally:
            os.close(fd)

    def write_file(self, path, data, mode=0o644, dir_mode=0o755):
        """Atomically replace the last component by a new regular file (never written through)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        pfd, name = self._parent(path, create=True, mode=dir_mode)
        try:
            tmp = ".tritonsim-%s.tmp" % secrets.token_hex(8)
            fd = os.open(tmp, _NEW_FILE_FLAGS, 0o600, dir_fd=pfd)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fchmod(fd, mode)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            except BaseException as e:
                try:
                    os.unlink(tmp, dir_fd=pfd)
                except OSError:
                    pass
                if isinstance(e, IsADirectoryError):
                    raise self.error(path, "is a directory, not replaced by a file") from None
                raise
        finally:
            os.close(pfd)

    def symlink(self, path, target):
        """Make path a symlink to target (whatever was at path is removed first)."""
        pfd, name = self._parent(path, create=True)
        try:
            self._remove_tree(pfd, name, path)
            os.symlink(target, name, dir_fd=pfd)
        finally:
            os.close(pfd)

    # ------------------------------------------------------------ removal

    def _check_same_fs(self, fd, path):
        if os.fstat(fd).st_dev != self._dev:
            raise self.error(path, "is on another filesystem (a mount point); not touched")

    def _remove_tree(self, pfd, name, path):
        """_remove_at(pfd, name), or with name None: empty directory pfd."""
        try:
            if name is None:
                return self._empty_at(pfd, path)
            return self._remove_at(pfd, name, path)
        except RecursionError:
            raise self.error(path, "directory tree too deep to remove") from None

    def _remove_at(self, pfd, name, path):
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=pfd)
            return True
        fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        try:
            self._check_same_fs(fd, path)
            self._empty_at(fd, path)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=pfd)
        return True

    def _empty_at(self, fd, path):
        for name in os.listdir(fd):
            self._remove_at(fd, name, path + "/" + name)
