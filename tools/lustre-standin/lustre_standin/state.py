"""Run-time state: the mount registry, its lock, and what is mounted.

The registry (``registry.json`` in the state directory) records the one
server mount of each filesystem and every client mount made by
``mount.lustre``, plus run-time pools and injected faults.  It is the only
shared state, so every change happens under an exclusive ``flock`` on the
``lock`` file; concurrent mounts are therefore serialised.  Readers (``lfs``,
possibly running as an unprivileged user) take a shared lock and never
write.

A client can disappear behind our back (a plain ``umount MOUNTPOINT`` does
not involve us), so an entry only counts while ``/proc/self/mountinfo``
still shows the same mount (same mount id, same device) at its mount point.
Writers prune the entries that fail that test.
"""

import contextlib
import fcntl
import os

from lustre_standin import util

STATE_MARKER = '.lustre-standin-state'


class Mount(object):
    """One line of /proc/self/mountinfo."""

    def __init__(self, line):
        fields = line.split()
        sep = fields.index('-')
        self.mount_id = int(fields[0])
        self.parent_id = int(fields[1])
        self.dev = fields[2]
        self.root = unescape(fields[3])
        self.mountpoint = unescape(fields[4])
        self.options = fields[5].split(',')
        self.fstype = fields[sep + 1]
        self.source = unescape(fields[sep + 2])
        self.super_options = fields[sep + 3].split(',')


def unescape(text):
    """Undo the octal escapes (``\\040`` for a space) of mountinfo."""
    if '\\' not in text:
        return text
    out = ''
    pos = 0
    while pos < len(text):
        if text[pos] == '\\' and text[pos + 1:pos + 4].isdigit():
            out += chr(int(text[pos + 1:pos + 4], 8))
            pos += 4
        else:
            out += text[pos]
            pos += 1
    return out


class MountTable(object):
    """A snapshot of this process's mount table."""

    def __init__(self, path='/proc/self/mountinfo'):
        with open(path) as src:
            self.mounts = [Mount(line) for line in src if line.strip()]

    def top(self, mountpoint):
        """The mount visible at ``mountpoint`` (the last one stacked)."""
        found = None
        for mount in self.mounts:
            if mount.mountpoint == mountpoint:
                found = mount
        return found

    def on_device(self, dev):
        """Every mount of the block device ``dev`` ("major:minor")."""
        return [mount for mount in self.mounts if mount.dev == dev]


def dev_string(st_dev):
    return '%d:%d' % (os.major(st_dev), os.minor(st_dev))


class State(object):
    """The state directory of one configuration."""

    def __init__(self, config):
        self.config = config
        self.root = config.state_dir
        self.lock_path = os.path.join(self.root, 'lock')
        self.registry_path = os.path.join(self.root, 'registry.json')
        self.images_dir = os.path.join(self.root, 'images')
        self.servers_dir = os.path.join(self.root, 'servers')

    def image_path(self, fsname):
        return os.path.join(self.images_dir, fsname + '.img')

    def server_mountpoint(self, fsname):
        return os.path.join(self.servers_dir, fsname)

    def create(self):
        """Create the state directory tree (root only)."""
        for path, mode in ((self.root, 0o755), (self.images_dir, 0o700),
                           (self.servers_dir, 0o755)):
            os.makedirs(path, mode=mode, exist_ok=True)
            os.chmod(path, mode)
        marker = os.path.join(self.root, STATE_MARKER)
        if not os.path.exists(marker):
            with open(marker, 'w') as out:
                out.write('State directory of the Lustre stand-in; '
                          'uninstall removes it.\n')

    def _load(self):
        registry = util.read_json(self.registry_path, empty_registry())
        for key, value in empty_registry().items():
            registry.setdefault(key, value)
        return registry

    @contextlib.contextmanager
    def locked(self, exclusive=False):
        """Hold the registry lock; yield the registry document.

        Exclusive holders may change the document and it is saved when the
        block ends without an exception.  Shared holders get a read-only
        snapshot; when the state directory does not exist yet they get an
        empty registry (nothing has ever been mounted).
        """
        if exclusive:
            self.create()
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            # Whatever the umask, readers running as the service user
            # must be able to open the lock.
            os.fchmod(fd, 0o644)
        else:
            try:
                fd = os.open(self.lock_path, os.O_RDONLY)
            except FileNotFoundError:
                yield empty_registry()
                return
            except PermissionError:
                # Unlocked read: the registry is replaced atomically.
                yield self._load()
                return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            registry = self._load()
            yield registry
            if exclusive:
                prune(registry, MountTable())
                util.write_json_atomic(self.registry_path, registry)
        finally:
            os.close(fd)


def empty_registry():
    return {'servers': {}, 'clients': [], 'pools': {}, 'faults': {}}


def server_is_live(entry, table):
    mount = table.top(entry['mountpoint'])
    return (mount is not None and mount.mount_id == entry['mount_id'] and
            mount.dev == entry['dev'])


def client_is_live(entry, table):
    mount = table.top(entry['mountpoint'])
    return (mount is not None and mount.mount_id == entry['mount_id'] and
            mount.dev == entry['dev'])


def prune(registry, table):
    """Drop client entries whose mount is gone (e.g. plain umount)."""
    registry['clients'] = [entry for entry in registry['clients']
                           if client_is_live(entry, table)]


class FsView(object):
    """How one path reaches an emulated filesystem.

    ``mountpoint`` is the client mount (or the server mount) the path is
    under; ``server_root`` is where the whole filesystem is visible, which
    layout inheritance needs because defaults are inherited from directories
    above a fileset (subdirectory) mount too.
    """

    def __init__(self, fs, mountpoint, subdir, instance, server_root, dev,
                 is_server=False, spec=None):
        self.fs = fs
        self.fsname = fs.name
        self.mountpoint = mountpoint
        self.subdir = subdir
        self.instance = instance
        self.server_root = server_root
        self.dev = dev
        self.is_server = is_server
        self.spec = spec

    def name(self):
        """What ``lfs getname`` prints: FSNAME-INSTANCE."""
        return '%s-%s' % (self.fsname, self.instance)

    def fs_path(self, path):
        """The path of ``path`` relative to the filesystem root."""
        rel = os.path.relpath(path, self.mountpoint)
        parts = [part for part in self.subdir.split('/') if part]
        if rel != '.':
            parts.extend(rel.split('/'))
        return '/' + '/'.join(parts)

    def server_path(self, path):
        """Where ``path`` is seen through the server mount, if mounted."""
        if self.server_root is None:
            return None
        rel = self.fs_path(path).lstrip('/')
        return os.path.join(self.server_root, rel) if rel \
            else self.server_root


def instance_id(fsname, mount_id):
    """A stable 16-hex-digit instance id, shaped like a kernel address.

    Real Lustre prints the address of the client's superblock; tests only
    need something stable per mount and unique between mounts.
    """
    value = 0xffff880000000000 | ((hash_text(fsname) + mount_id * 0x1000)
                                  & 0x7ffffff000)
    return '%016x' % value


def hash_text(text):
    """A small deterministic string hash (``hash()`` is salted per run)."""
    value = 5381
    for char in text.encode():
        value = (value * 33 + char) & 0xffffffffff
    return value


def views(config, registry, table):
    """Every live mount of every emulated filesystem, client mounts first.

    Client mounts come in mount-table order, which is the order real
    ``lfs df`` and ``lfs getname`` walk /proc/mounts in.
    """
    servers = {name: entry for name, entry in registry['servers'].items()
               if server_is_live(entry, table)}
    result = []
    order = {mount.mount_id: pos for pos, mount in enumerate(table.mounts)}
    clients = [entry for entry in registry['clients']
               if client_is_live(entry, table)]
    clients.sort(key=lambda entry: order.get(entry['mount_id'], 0))
    for entry in clients:
        fs = config.fs(entry['fsname'],
                       registry['pools'].get(entry['fsname']))
        server = servers.get(entry['fsname'])
        result.append(FsView(fs, entry['mountpoint'], entry['subdir'],
                             entry['instance'],
                             server['mountpoint'] if server else None,
                             entry['dev'], spec=entry['spec']))
    for name, entry in sorted(servers.items()):
        fs = config.fs(name, registry['pools'].get(name))
        result.append(FsView(fs, entry['mountpoint'], '',
                             instance_id(name, entry['mount_id']),
                             entry['mountpoint'], entry['dev'],
                             is_server=True))
    return result


def find_view(config, state, path):
    """The FsView holding ``path``, or None if it is not on the stand-in.

    ``path`` need not exist (setstripe creates files): its nearest existing
    ancestor decides.  A path counts only if it is under a live mount of
    ours and really lies on that filesystem (same device), so a foreign
    mount stacked inside a client mount is correctly "not Lustre".
    """
    real = os.path.realpath(path)
    with state.locked() as registry:
        candidates = views(config, registry, MountTable())
    best = None
    for view in candidates:
        mp = view.mountpoint
        if real == mp or real.startswith(mp.rstrip('/') + '/'):
            if best is None or len(mp) > len(best.mountpoint):
                best = view
    if best is None:
        return None
    probe = real
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    try:
        if dev_string(os.stat(probe).st_dev) != best.dev:
            return None
    except OSError:
        return None
    return best
