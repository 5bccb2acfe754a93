"""Parsing of the Lustre client device string and mount options.

The rules follow mount.lustre(8) and, where the manual is silent, what the
Lustre 2.15 code does: the NID list is checked by ``mount.lustre`` itself
(libcfs ``libcfs_str2nid``), everything else by the kernel at mount(2) time,
which decides the errno that ``mount.lustre`` reports.
"""

import errno
import re

# LNet network types, in the order libcfs matches their names (prefix
# match, so the order matters), and how each one spells an address.
NET_TYPES = (('lo', 'lo'), ('tcp', 'ip'), ('o2ib', 'ip'), ('gni', 'num'),
             ('gip', 'ip'), ('ptlf', 'num'), ('kfi', 'num'))

FSNAME_MAX = 8
_FSNAME_RE = re.compile(r'^[A-Za-z0-9_-]+$')
_IPV4_RE = re.compile(r'^(\d+)\.(\d+)\.(\d+)\.(\d+)$')
# libcfs resolves names that start with a letter; we cannot resolve (no
# network), so any syntactically valid host name is accepted.
_HOST_RE = re.compile(r'^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)*$')

# Options mount.lustre consumes as mount(2) flags or ignores (its opt_map),
# plus the ones mount(8) passes through for helpers to ignore.
GENERIC_OPTIONS = frozenset((
    'async', 'atime', 'auto', 'defaults', 'dev', 'exec', 'loop', 'noatime',
    'noauto', 'nodev', 'noowner', 'nosuid', 'nouser', 'nousers', '_netdev',
    'noexec', 'remount', 'ro', 'rw', 'suid', 'sync', 'diratime',
    'nodiratime', 'norelatime', 'relatime', 'strictatime', 'user', 'users',
    'owner', 'group', 'nofail'))
# Client options the 2.15 kernel accepts (llite ll_options()).
CLIENT_OPTIONS = frozenset((
    'flock', 'localflock', 'noflock', 'lazystatfs', 'nolazystatfs',
    'user_xattr', 'nouser_xattr', 'always_ping', 'verbose', 'noverbose',
    'user_fid2path', 'nouser_fid2path', 'test_dummy_encryption',
    'noencrypt', 'encrypt', 'checksum', 'nochecksum', 'lruresize',
    'nolruresize', '32bitapi', 'nolock'))
# Options taking a value.  mgsname= is newer than 2.15 (the 2.15 kernel
# would refuse it) but the manual documents it, so it is accepted.
VALUE_OPTIONS = frozenset((
    'retry', 'network', 'mgsname', 'mgssec', 'skpath', 'exclude',
    'test_dummy_encryption', 'foreign_symlink', 'context', 'fscontext',
    'defcontext', 'rootcontext'))
MGSSEC_FLAVORS = frozenset((
    'null', 'plain', 'gssnull', 'krb5n', 'krb5a', 'krb5i', 'krb5p', 'skn',
    'ska', 'ski', 'skpi'))


class SpecError(Exception):
    """An unusable device string or option, with the errno to exit with.

    ``nid_error`` marks failures mount.lustre detects itself (it then prints
    "Can't parse NID" and its usage); the others are mount(2) failures.
    """

    def __init__(self, code, message, nid_error=False):
        super().__init__(message)
        self.code = code
        self.nid_error = nid_error


class Spec(object):
    """A parsed ``MGSNODE[:MGSNODE...]:/FSNAME[/SUBDIR]``."""

    def __init__(self, text, nodes, fsname, subdir):
        self.text = text
        self.nodes = nodes
        self.fsname = fsname
        self.subdir = subdir

    def nids(self):
        return [nid for node in self.nodes for nid in node]


def parse_net(text):
    """Return ``(nettype, number)`` for ``tcp``, ``o2ib1``... or None."""
    for name, _kind in NET_TYPES:
        if text.startswith(name):
            rest = text[len(name):]
            if not rest:
                return name, 0
            if name == 'lo' or not rest.isdigit():
                return None
            return name, int(rest)
    return None


def nid_is_valid(text):
    """Whether ``text`` is a NID: ``ADDRESS[@NETTYPE[NUMBER]]``."""
    address, sep, net = text.partition('@')
    parsed = parse_net(net) if sep else ('tcp', 0)
    if parsed is None:
        return False
    kind = dict(NET_TYPES)[parsed[0]]
    if kind == 'lo':
        return True
    if kind == 'num':
        return bool(re.match(r'^(0[xX][0-9a-fA-F]+|\d+)$', address))
    match = _IPV4_RE.match(address)
    if match:
        return all(int(part) <= 255 for part in match.groups())
    return bool(_HOST_RE.match(address))


def parse_spec(text):
    """Parse a client device string.

    :raises SpecError: with the errno real Lustre would fail with.
    """
    if ':/' not in text:
        # mount.lustre treats anything else as a server block device, and
        # a client-only build cannot mount those.
        raise SpecError(errno.EINVAL, 'no server support')
    # Walk the NIDs the way mount.lustre's convert_hostnames() does: each
    # one ends at ',' (same node) or ':' (next node), up to the '/'.
    nodes = [[]]
    pos = 0
    while text[pos] != '/':
        ends = [i for i in (text.find(',', pos), text.find(':', pos))
                if i >= 0]
        if not ends or not nid_is_valid(text[pos:min(ends)]):
            raise SpecError(errno.EINVAL, text[pos:], nid_error=True)
        end = min(ends)
        nodes[-1].append(text[pos:end])
        if text[end] == ':':
            nodes.append([])
        pos = end + 1
    if not nodes[-1]:
        nodes.pop()
    # The kernel skips extra leading slashes and trailing slashes.
    path = text[pos:].lstrip('/').rstrip('/')
    fsname, _sep, subdir = path.partition('/')
    if len(fsname) > FSNAME_MAX:
        raise SpecError(errno.ENAMETOOLONG,
                        'fsname longer than %d characters' % FSNAME_MAX)
    if not _FSNAME_RE.match(fsname):
        raise SpecError(errno.EINVAL, 'invalid fsname %r' % fsname)
    if subdir:
        for part in subdir.split('/'):
            if part in ('', '.', '..'):
                raise SpecError(errno.EINVAL,
                                'invalid fileset component %r' % part)
    return Spec(text, nodes, fsname, subdir)


class Options(object):
    """Parsed mount options: mount(2) flags and Lustre options."""

    def __init__(self):
        self.readonly = False
        self.remount = False
        self.flags = []
        self.lustre = []
        self.retry = 0


def parse_options(text):
    """Split and check an option string such as ``rw,flock,retry=3``.

    :raises SpecError: EINVAL for anything the kernel would refuse.
    """
    options = Options()
    for opt in text.split(','):
        if not opt:
            continue
        name, sep, value = opt.partition('=')
        if opt in GENERIC_OPTIONS or opt.startswith('x-'):
            if opt in ('ro', 'rw'):
                options.readonly = opt == 'ro'
            elif opt == 'remount':
                options.remount = True
            elif opt in ('nosuid', 'nodev', 'noexec', 'noatime',
                         'nodiratime', 'relatime', 'sync', 'suid', 'dev',
                         'exec', 'atime', 'diratime', 'strictatime'):
                options.flags.append(opt)
            continue
        if sep and name in VALUE_OPTIONS:
            check_value(name, value)
            if name == 'retry':
                # mount.lustre uses atoi() and clamps to [0, 99].
                digits = re.match(r'^\s*[+-]?\d*', value).group()
                options.retry = min(max(int(digits or 0), 0), 99) \
                    if digits.strip(' +-') else 0
            options.lustre.append(opt)
            continue
        if not sep and opt in CLIENT_OPTIONS:
            options.lustre.append(opt)
            continue
        if opt == 'force':
            continue
        raise SpecError(errno.EINVAL, "Unknown option '%s'" % opt)
    return options


def check_value(name, value):
    """Check the values the kernel parses itself."""
    if name == 'network' and (parse_net(value) is None or not value):
        raise SpecError(errno.EINVAL, 'invalid network %r' % value)
    if name == 'mgssec' and value not in MGSSEC_FLAVORS:
        raise SpecError(errno.EINVAL, 'invalid mgssec flavor %r' % value)
    if name in ('mgsname', 'exclude', 'skpath') and not value:
        raise SpecError(errno.EINVAL, 'empty %s' % name)
