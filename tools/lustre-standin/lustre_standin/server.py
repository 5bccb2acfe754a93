"""The "servers": one ext4 image per filesystem name, mounted once.

Each filesystem lives in a sparse image under the state directory, attached
to a loop device and mounted exactly once, at ``servers/FSNAME``.  Client
mounts are bind mounts of that one mount (or of a subdirectory of it), so
every client of a filesystem sees the same data.  Mounting the same image a
second time would run two ext4 instances on one disk and corrupt it, so
before mounting we look for any loop device already backed by the image.

Everything here runs as root, under the registry's exclusive lock.
"""

import errno
import os
import time

from lustre_standin import state as state_mod
from lustre_standin import util


class ServerError(Exception):
    """A server-side failure, with the errno mount.lustre reports."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def loops_for(image):
    """Loop devices currently backed by ``image``."""
    out = util.run(['losetup', '--noheadings', '--output', 'NAME,BACK-FILE',
                    '--list'], check=False)
    real = os.path.realpath(image)
    loops = []
    for line in out.splitlines():
        name, _sep, back = line.strip().partition(' ')
        back = back.strip()
        if back.endswith(' (deleted)'):
            back = back[:-len(' (deleted)')]
        if back and os.path.realpath(back) == real:
            loops.append(name)
    return loops


def device_of(path):
    """The "major:minor" of a block device node."""
    return state_mod.dev_string(os.stat(path).st_rdev)


def create_image(image, size, label):
    """Create a sparse, formatted image (fast: lazy inode/journal init)."""
    os.makedirs(os.path.dirname(image), mode=0o700, exist_ok=True)
    tmp = image + '.new'
    with open(tmp, 'wb') as out:
        out.truncate(size)
    # 4 KiB blocks like ldiskfs; no root reserve, so that every user hits
    # ENOSPC at the same point that statfs reports as full.
    util.run(['mkfs.ext4', '-q', '-F', '-b', '4096', '-m', '0', '-L', label,
              '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard',
              tmp])
    os.rename(tmp, image)


def ensure_server(state, registry, fs):
    """Make sure ``fs`` is mounted at its server mount point.

    :returns: the registry entry of the server mount.
    :raises ServerError: if the image is in use somewhere else.
    """
    table = state_mod.MountTable()
    entry = registry['servers'].get(fs.name)
    if entry and state_mod.server_is_live(entry, table):
        return entry
    image = state.image_path(fs.name)
    mountpoint = state.server_mountpoint(fs.name)
    if not os.path.exists(image):
        create_image(image, fs.size, fs.name)
    loops = loops_for(image)
    if len(loops) > 1:
        # Two loop devices mean two ext4 instances on one image: refuse to
        # make it worse.
        raise ServerError(errno.EBUSY, '%s is attached to %s'
                          % (image, ' '.join(loops)))
    mount = None
    if loops:
        dev = device_of(loops[0])
        ours = [m for m in table.on_device(dev)
                if m.mountpoint == mountpoint and m.root == '/']
        if ours:
            # Mounted by an earlier run whose registry entry was lost.
            mount = ours[-1]
    if mount is None:
        # Mounting a loop device that is already mounted elsewhere gives
        # the same superblock, not a second ext4 instance: that is safe.
        loop = loops[0] if loops else util.run(
            ['losetup', '--find', '--show', image]).strip()
        os.makedirs(mountpoint, mode=0o755, exist_ok=True)
        util.run(['mount', '-t', 'ext4', loop, mountpoint])
        mount = state_mod.MountTable().top(mountpoint)
        try:
            # A Lustre root has no lost+found; clients would see it.
            os.rmdir(os.path.join(mountpoint, 'lost+found'))
        except OSError:
            pass
    entry = {'image': image, 'loop': mount.source,
             'mountpoint': mountpoint, 'dev': mount.dev,
             'mount_id': mount.mount_id}
    registry['servers'][fs.name] = entry
    return entry


def bind_client(server, subdir, mountpoint, options):
    """Bind-mount the server (or a fileset of it) at ``mountpoint``.

    :returns: the new mountinfo entry.
    :raises ServerError: ENOENT if the fileset does not exist.
    """
    source = server['mountpoint']
    if subdir:
        source = os.path.join(source, subdir)
        real = os.path.realpath(source)
        # A symlink must not lead a fileset out of its filesystem.
        if not os.path.isdir(real) or not (
                real + '/').startswith(server['mountpoint'] + '/'):
            raise ServerError(errno.ENOENT, 'fileset %s not found' % subdir)
        source = real
    util.run(['mount', '--bind', source, mountpoint])
    flags = list(options.flags)
    if options.readonly:
        flags.append('ro')
    if flags:
        # Per-mount flags of a bind mount are set by a remount.
        try:
            util.run(['mount', '-o', 'remount,bind,' + ','.join(flags),
                      mountpoint])
        except util.CommandError:
            util.run(['umount', mountpoint], check=False)
            raise
    return state_mod.MountTable().top(mountpoint)


def unmount(mountpoint):
    """Unmount, falling back to a lazy unmount if it is busy.

    :returns: a warning string if a lazy unmount was needed, else None.
    """
    try:
        util.run(['umount', mountpoint])
        return None
    except util.CommandError as exc:
        util.run(['umount', '-l', mountpoint], check=False)
        return 'lazy unmount of %s (%s)' % (mountpoint, exc)


def unmount_all(mounts):
    """Unmount ``mounts``, deepest mount point and newest mount first.

    :returns: a list of warnings, one per lazy unmount.
    """
    ordered = sorted(mounts, key=lambda m: (-m.mountpoint.count('/'),
                                            -m.mount_id))
    return [warning for warning in map(unmount, (m.mountpoint
                                                 for m in ordered))
            if warning]


def unmount_under(path):
    """Unmount everything mounted at or below ``path``, stand-in or not.

    :returns: a list of warnings, one per lazy unmount.
    """
    below = path.rstrip('/') + '/'
    return unmount_all(m for m in state_mod.MountTable().mounts
                       if (m.mountpoint + '/').startswith(below))


def cleanup(state, registry):
    """Unmount every client and server mount of the stand-in.

    Clients go first (deepest mount point first), then anything else still
    using a server's device, then the servers; finally the loop devices of
    our images are detached.  Mounts that are already gone are fine.

    :returns: a list of warnings.
    """
    table = state_mod.MountTable()
    devs = set(entry['dev'] for entry in registry['servers'].values())
    devs.update(entry['dev'] for entry in registry['clients'])
    servers = set(entry['mountpoint']
                  for entry in registry['servers'].values())
    servers.update(state.server_mountpoint(name)
                   for name in registry['servers'])
    warnings = unmount_all(m for m in table.mounts if m.dev in devs and
                           m.mountpoint not in servers)
    registry['clients'] = []
    warnings += unmount_all(m for m in state_mod.MountTable().mounts
                            if m.mountpoint in servers)
    registry['servers'] = {}
    images = []
    if os.path.isdir(state.images_dir):
        images = [os.path.join(state.images_dir, name)
                  for name in os.listdir(state.images_dir)
                  if name.endswith('.img')]
    for image in images:
        for loop in loops_for(image):
            detach(loop, warnings)
    return warnings


def detach(loop, warnings):
    """Detach a loop device, retrying briefly while udev still holds it."""
    for _attempt in range(10):
        try:
            util.run(['losetup', '--detach', loop])
            return
        except util.CommandError as exc:
            error = exc
            time.sleep(0.2)
    warnings.append('cannot detach %s: %s' % (loop, error))
