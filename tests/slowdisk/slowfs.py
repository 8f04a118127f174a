"""A slow disk for tests: a FUSE file system that passes every call through
to a directory and makes each write wait, and each fsync wait four times as
long, as a busy or network-backed disk does.

    python slowfs.py ROOT MOUNTPOINT DELAY_MS

Runs in the foreground until unmounted (fusermount3 -u MOUNTPOINT) or
killed. Needs mfusepy and libfuse3 (scripts/setup installs both).
"""

import errno
import os
import sys
import time

import mfusepy as fuse

STAT_FIELDS = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")
STATVFS_FIELDS = (
    "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
    "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax",
)


class SlowDisk(fuse.Operations):
    use_ns = False

    def __init__(self, root, delay):
        self.root = root
        self.delay = delay

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def __call__(self, op, *args):
        try:
            return super().__call__(op, *args)
        except OSError as error:
            raise fuse.FuseOSError(error.errno or errno.EIO) from error

    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        return {key: getattr(st, key) for key in STAT_FIELDS}

    def readdir(self, path, fh):
        return [".", "..", *os.listdir(self._path(path))]

    def mkdir(self, path, mode):
        os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        os.rmdir(self._path(path))

    def unlink(self, path):
        os.unlink(self._path(path))

    def rename(self, old, new):
        os.rename(self._path(old), self._path(new))

    def chmod(self, path, mode):
        os.chmod(self._path(path), mode)

    def truncate(self, path, length, fh=None):
        os.truncate(self._path(path), length)

    def open(self, path, flags):
        return os.open(self._path(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        time.sleep(self.delay)
        return os.pwrite(fh, data, offset)

    def fsync(self, path, datasync, fh):
        time.sleep(self.delay * 4)
        os.fsync(fh)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        return {key: getattr(st, key) for key in STATVFS_FIELDS}


def main():
    root, mountpoint, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    fuse.FUSE(SlowDisk(root, delay_ms / 1000), mountpoint, foreground=True, nothreads=False)


if __name__ == "__main__":
    main()
