"""Emulated file layouts, kept in extended attributes.

A file's own layout is a JSON document in ``user.lustre_standin.lov``; a
directory's default layout is in ``user.lustre_standin.lov_default``.  The
user.* namespace is the only one an unprivileged owner may write on ext4,
and lfs runs as the Cinder user.

A layout is a list of components (a plain layout is one component without
an extent).  Components that real Lustre would have instantiated carry
their OST objects.  Object placement is a pure function of the inode
number, the layout generation and the component, so results are
reproducible from run to run (real Lustre places objects by load and free
space; tests need determinism more than realism).

Files created by other programs (qemu-img, cp...) have no xattr: like a
real Lustre file they got a layout at creation, which we derive from the
nearest directory default.  We cannot see when such a file was created, so
this is evaluated when asked, against the defaults in force at that time.
"""

import errno
import json
import os

from lustre_standin import util

XATTR_LAYOUT = 'user.lustre_standin.lov'
XATTR_DEFAULT = 'user.lustre_standin.lov_default'
# Marks a file created by a setstripe that then failed, like a Lustre file
# opened with O_LOV_DELAY_CREATE: it has no layout until it is written.
XATTR_NOLAYOUT = 'user.lustre_standin.nolayout'

EOF = util.LUSTRE_EOF
MIN_STRIPE_SIZE = 65536
MAX_STRIPE_COUNT = 2000
MAX_POOL_NAME = 15

# Object sequence of a single-MDT filesystem's OST objects: IDIF FIDs, as
# in the examples of the Lustre manual ("[0x100000000:0x2:0x0]").
FID_SEQ_IDIF = 0x100000000
# Sequence used for the emulated FIDs of files (first normal MDT0 seq).
FID_SEQ_NORMAL = 0x200000401


class Component(object):
    """One component: an extent of the file and how it is striped."""

    def __init__(self, start=0, end=EOF, count=0, size=0, offset=-1,
                 pool='', objects=None):
        self.start = start
        self.end = end
        self.count = count
        self.size = size
        self.offset = offset
        self.pool = pool
        # [[ost_index, object_id], ...] once instantiated.
        self.objects = objects

    def to_dict(self):
        data = {'start': self.start,
                'end': None if self.end == EOF else self.end,
                'count': self.count, 'size': self.size,
                'offset': self.offset, 'pool': self.pool}
        if self.objects:
            # Compact: an xattr value must fit in one 4 KiB block, and a
            # component's objects share one object id (see allocate()).
            data['osts'] = util.format_index_runs(
                [ost for ost, _objid in self.objects])
            data['objid'] = self.objects[0][1]
        return data

    @classmethod
    def from_dict(cls, data):
        end = data.get('end')
        objects = None
        if 'osts' in data:
            objects = [[ost, data['objid']]
                       for ost in util.parse_index_runs(data['osts'])]
        return cls(data.get('start', 0), EOF if end is None else end,
                   data.get('count', 0), data.get('size', 0),
                   data.get('offset', -1), data.get('pool', ''), objects)

    def copy(self):
        return Component.from_dict(json.loads(json.dumps(self.to_dict())))


class Layout(object):
    """A plain (one component, no extent) or composite (PFL) layout."""

    def __init__(self, comps, composite=False, gen=0):
        self.comps = comps
        self.composite = composite
        # Number of layout swaps (lfs migrate) the file went through.
        self.gen = gen

    def to_json(self):
        return json.dumps({'version': 1, 'composite': self.composite,
                           'gen': self.gen,
                           'comps': [c.to_dict() for c in self.comps]},
                          sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw):
        data = json.loads(raw.decode())
        return cls([Component.from_dict(c) for c in data['comps']],
                   data.get('composite', False), data.get('gen', 0))

    def copy(self):
        return Layout.from_json(self.to_json())


def get_xattr(path, name):
    """The value of an xattr, or None if it is not set."""
    try:
        return os.getxattr(path, name)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP):
            return None
        raise


def load(path, name=XATTR_LAYOUT):
    raw = get_xattr(path, name)
    if raw is None:
        return None
    try:
        return Layout.from_json(raw)
    except (ValueError, KeyError):
        return None


def store(path, layout, name=XATTR_LAYOUT):
    os.setxattr(path, name, layout.to_json())


def remove(path, name):
    try:
        os.removexattr(path, name)
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise


def fs_default(view):
    """The filesystem-wide default (root directory default or config)."""
    fs = view.fs
    count, size = fs.stripe_count, fs.stripe_size
    root = view.server_root
    if root is None and not view.subdir:
        root = view.mountpoint
    if root:
        layout = load(root, XATTR_DEFAULT)
        if layout and not layout.composite:
            count = layout.comps[0].count or count
            size = layout.comps[0].size or size
    return count, size


def ancestors(view, path):
    """Directories from ``path`` up to the filesystem root, best path each.

    Above a fileset mount the directories are only visible through the
    server mount, which is used whenever it is mounted.
    """
    start = view.server_path(path) or path
    top = view.server_root or view.mountpoint
    current = start
    while True:
        yield current
        if current == top or current == '/':
            return
        current = os.path.dirname(current)


def directory_default(view, dirpath):
    """The default layout new files in ``dirpath`` get, and where from.

    :returns: ``(layout, source_dir)``; ``source_dir`` is None when the
        filesystem default applies.
    """
    for directory in ancestors(view, dirpath):
        layout = load(directory, XATTR_DEFAULT)
        if layout is not None:
            return layout, directory
    count, size = fs_default(view)
    return Layout([Component(count=count, size=size)]), None


def candidates(fs, pool):
    """OST indices a component may use: its pool's, or all of them.

    Like Lustre 2.15, a pool that does not exist means "all OSTs" (the
    stand-in refuses such pools at setstripe time unless strict_pools is
    off, so this only happens in the lenient mode).
    """
    if pool and pool in fs.pools and fs.pools[pool]:
        return list(fs.pools[pool])
    return list(range(fs.osts))


def allocate(fs, comp, seed, comp_index, gen, default_count):
    """Choose OST objects for a component, deterministically.

    The stripe count is capped to the OSTs available (in the pool), as the
    MDS does; -1 means all of them.  Without a requested start index the
    start rotates with the inode number, like round-robin allocation.
    """
    osts = candidates(fs, comp.pool)
    # 0 means the default count, -1 all OSTs.
    count = comp.count or default_count
    if count < 0 or count > len(osts):
        count = len(osts)
    if comp.offset >= 0 and comp.offset in osts:
        first = osts.index(comp.offset)
    else:
        first = (seed + comp_index) % len(osts)
    objid = seed * 256 + (gen % 16) * 16 + comp_index % 16
    return [[osts[(first + k) % len(osts)], objid] for k in range(count)]


def object_fid(ost_index, objid):
    """The IDIF FID of an OST object, as liblustreapi's ostid_to_fid()."""
    seq = FID_SEQ_IDIF | (ost_index << 16) | ((objid >> 32) & 0xffff)
    return seq, objid & 0xffffffff, 0


def file_fid(st):
    """An emulated FID for a file: MDT0's first sequence and the inode."""
    return FID_SEQ_NORMAL, st.st_ino & 0xffffffff, 0


class FileLayout(object):
    """A file's layout as lfs getstripe shows it.

    ``components`` holds ``(component, initialised)`` pairs, with objects
    filled in for every initialised component.
    """

    def __init__(self, layout, components):
        self.layout = layout
        self.components = components

    @property
    def composite(self):
        return self.layout.composite

    def layout_gen(self):
        """The lcm_layout_gen of a composite layout.

        One per component at creation, one more per later instantiation,
        one more per layout swap: guessed from published 2.15 output, the
        MDS does not document it.
        """
        late = sum(1 for idx, (_comp, init) in enumerate(self.components)
                   if init and idx > 0)
        return len(self.components) + late + self.layout.gen


def file_layout(view, path, st):
    """The layout of the regular file ``path`` (stat result ``st``).

    :returns: a FileLayout, or None if the file has no layout (a failed
        setstripe left it empty and layout-less).
    """
    layout = load(path)
    if layout is None:
        if get_xattr(path, XATTR_NOLAYOUT) is not None and \
                st.st_size == 0:
            return None
        default, _src = directory_default(view, os.path.dirname(path))
        layout = inherit(view, default)
    count_default = fs_default(view)[0]
    comps = []
    for idx, comp in enumerate(layout.comps):
        # Writing (or truncating) past a component's start instantiates
        # it and everything before it; the first one exists from creation.
        init = comp.objects is not None or idx == 0 or \
            comp.start < st.st_size
        if init and comp.objects is None:
            comp = comp.copy()
            comp.objects = allocate(view.fs, comp, st.st_ino, idx,
                                    layout.gen, count_default)
        comps.append((comp, init))
    return FileLayout(layout, comps)


def inherit(view, default):
    """The layout a new file gets from a directory default."""
    count, size = fs_default(view)
    layout = default.copy()
    for comp in layout.comps:
        comp.count = comp.count or count
        comp.size = comp.size or size
        comp.objects = None
    return layout


def has_layout(path, st):
    """Whether a regular file already has a layout (setstripe must fail).

    On Lustre a file gets its layout when it is created (or first written
    when created with O_LOV_DELAY_CREATE), so only an empty layout-less
    file left behind by a failed setstripe can still take one.
    """
    if get_xattr(path, XATTR_LAYOUT) is not None:
        return True
    return not (get_xattr(path, XATTR_NOLAYOUT) is not None and
                st.st_size == 0)
