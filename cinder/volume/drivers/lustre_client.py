# Copyright (c) 2026 The Cinder Lustre driver authors
# All Rights Reserved.
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The Lustre client, as Cinder's Lustre drivers use it.

Everything here is about Lustre rather than Cinder, and is shared by the
Lustre volume driver and the Lustre backup driver:

* :class:`Share`, the device string of a Lustre client mount
  (``MGSNODE[:MGSNODE...]:/FSNAME[/SUBDIR]``, see mount.lustre(8)) and the
  ``-o`` options that go with it, parsed and validated;
* :func:`parse_shares` for the shares file of the volume driver;
* :class:`LustreMountClient`, os-brick's mount client taught the ``lustre``
  mount type;
* :class:`Layout`, a file layout (stripe count and size, OST pool, or a
  composite PFL layout), validated and turned into ``lfs setstripe``
  arguments;
* the ``lfs`` commands the drivers run (:func:`setstripe`, :func:`migrate`,
  :func:`pools`, :func:`pool_capacity`, :func:`is_lustre`,
  :func:`client_version`) and small pure parsers of their output;
* :func:`capacity` of a mounted fileset, without walking it.

The drivers read as Cinder logic and never build a Lustre command line or
parse Lustre syntax themselves.
"""

import collections
import os
import re
import subprocess
import time

from os_brick import exception as brick_exception
from os_brick.remotefs import remotefs as remotefs_brick
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import units

from cinder import exception
from cinder.i18n import _

LOG = logging.getLogger(__name__)

# mount(8) runs the helper of a file system type from these directories.
MOUNT_HELPER_DIRS = ('/sbin', '/sbin/fs.d', '/sbin/fs', '/usr/sbin')
MOUNT_HELPER = 'mount.lustre'

# A NID is HOST@NETTYPE[NETNUM]; "@tcp0" is implied when it is missing.
_NID_RE = re.compile(
    r'^(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)'
    r'(?:@(?P<net>[a-z][a-z0-9]*?)(?P<num>[0-9]*))?$')
_FSNAME_RE = re.compile(r'^[A-Za-z0-9_-]{1,8}$')
_SUBDIR_COMPONENT_RE = re.compile(r'^[A-Za-z0-9_.@+,=%~-]+$')

# Client mount options of mount.lustre(8) and the generic ones of mount(8)
# that make sense for a fileset holding volume files.
_FLAG_OPTIONS = frozenset((
    'flock', 'localflock', 'noflock', 'lazystatfs', 'nolazystatfs',
    'user_xattr', 'nouser_xattr', 'always_ping', 'verbose', 'noverbose',
    'user_fid2path', 'nouser_fid2path', 'noencrypt',
    'test_dummy_encryption',
    'ro', 'rw', 'noatime', 'atime', 'relatime', 'norelatime', 'nodiratime',
    'diratime', 'lazytime', 'nolazytime', 'nodev', 'dev', 'nosuid', 'suid',
    'noexec', 'exec', 'sync', 'async', 'dirsync', 'defaults', '_netdev',
    'nofail',
))
_VALUE_OPTIONS = frozenset((
    'network', 'mgsname', 'retry', 'mgssec', 'skpath', 'exclude',
))
_FLOCK_OPTIONS = ('flock', 'localflock', 'noflock')

# Limits of lfs-setstripe(1): stripe sizes are multiples of 64 KiB, at most
# 2000 stripes (LOV_MAX_STRIPE_COUNT), pool names of at most 15 characters.
STRIPE_ALIGN = 64 * units.Ki
MAX_STRIPE_SIZE = 4 * units.Gi
MAX_STRIPE_COUNT = 2000
_POOL_RE = re.compile(r'^[A-Za-z0-9_.-]{1,15}$')
_SIZE_RE = re.compile(r'^([0-9]+)([KMGT]?)$', re.IGNORECASE)
_SIZE_UNITS = {'': 1, 'K': units.Ki, 'M': units.Mi, 'G': units.Gi,
               'T': units.Ti}


class LustreException(exception.RemoteFSException):
    message = _('Lustre error: %(reason)s')


class LustreConfigError(exception.InvalidConfigurationValue):
    """A Lustre setting an operator has to correct."""

    message = _('%(source)s: %(reason)s')


class LustreMountTimeout(LustreException):
    message = _('mounting %(share)s did not finish within %(timeout)d '
                'seconds; is the MGS reachable?')


class LustreNoSharesMounted(exception.RemoteFSNoSharesMounted):
    message = _('No Lustre share is mounted: %(reason)s')


class LustreNoSuitableShareFound(exception.RemoteFSNoSuitableShareFound):
    message = _('No Lustre share can host a volume of %(volume_size)s GiB: '
                '%(reason)s')


def error_text(exc):
    """What a failed command said, for an operator to read."""
    stderr = getattr(exc, 'stderr', None)
    return stderr.strip() if stderr and stderr.strip() else str(exc)


def _nid_key(nid):
    match = _NID_RE.match(nid)
    return '%s@%s%s' % (match.group('host').lower(),
                        match.group('net') or 'tcp',
                        match.group('num') or '0')


def split_options(options):
    """Split mount options on commas, dropping empty entries."""
    return [opt.strip() for opt in (options or '').split(',') if opt.strip()]


def check_options(options):
    """Raise ValueError unless every option is a Lustre client option."""
    for option in options:
        name, sep, value = option.partition('=')
        if name in _VALUE_OPTIONS and sep and value:
            continue
        if name in _FLAG_OPTIONS and not sep:
            continue
        raise ValueError(_("unknown or malformed Lustre mount option "
                           "'%s'") % option)


def flock_mode(options):
    """Return which flock option is in effect: the last one given wins."""
    modes = [opt for opt in options if opt in _FLOCK_OPTIONS]
    return modes[-1] if modes else None


class Share(collections.namedtuple('Share', 'device mgs_nodes fsname subdir '
                                            'options')):
    """A Lustre fileset as Cinder mounts it.

    ``device`` is the device string exactly as configured (for example
    ``10.0.0.1@tcp:/lfs01/cinder``): os-brick and Nova hash it into the mount
    point, so it is never rewritten.  ``options`` are the share's own mount
    options, a list of strings.
    """

    __slots__ = ()

    @classmethod
    def parse(cls, device, options=()):
        """Validate a device string as mount.lustre(8) defines it.

        :raises ValueError: with the reason, when it is not valid
        """
        if not device or any(c.isspace() for c in device):
            raise ValueError(_("'%s' is not a Lustre device: it must not be "
                               "empty or contain spaces") % device)
        mgs, sep, path = device.partition(':/')
        if not sep or not mgs:
            raise ValueError(_("'%s' is not a Lustre device: expected "
                               "MGSNID[,MGSNID...][:MGSNID...]:/FSNAME"
                               "[/SUBDIR]") % device)
        mgs_nodes = []
        for node in mgs.split(':'):
            nids = node.split(',')
            for nid in nids:
                if not _NID_RE.match(nid) or '..' in nid:
                    raise ValueError(_("'%(device)s': '%(nid)s' is not a "
                                       "valid MGS NID (HOST@NETTYPE, for "
                                       "example 10.0.0.1@tcp or mgs1@o2ib1)")
                                     % {'device': device, 'nid': nid})
            mgs_nodes.append(tuple(nids))
        fsname, _sep, subdir = path.partition('/')
        if not _FSNAME_RE.match(fsname):
            raise ValueError(_("'%(device)s': '%(fsname)s' is not a valid "
                               "Lustre fsname (1 to 8 letters, digits, '_' "
                               "or '-')") % {'device': device,
                                             'fsname': fsname})
        if subdir:
            for part in subdir.rstrip('/').split('/'):
                if part in ('', '.', '..'):
                    raise ValueError(_("'%s': the fileset path must not "
                                       "contain empty, '.' or '..' "
                                       "components") % device)
                if not _SUBDIR_COMPONENT_RE.match(part):
                    raise ValueError(_("'%(device)s': unsupported character "
                                       "in fileset path component "
                                       "'%(part)s'") % {'device': device,
                                                        'part': part})
        options = list(options)
        check_options(options)
        return cls(device, tuple(mgs_nodes), fsname, subdir.rstrip('/'),
                   options)

    @property
    def key(self):
        """What identifies the fileset, whatever the spelling of the NIDs."""
        nodes = tuple(sorted(tuple(sorted(_nid_key(nid) for nid in node))
                             for node in self.mgs_nodes))
        return nodes, self.fsname, self.subdir

    @property
    def fileset(self):
        """The fileset's path in the filesystem, as FSNAME[/SUBDIR]."""
        return '/'.join(filter(None, (self.fsname, self.subdir)))

    def contains(self, other):
        """Whether ``other`` is this fileset or a fileset below it."""
        nodes, fsname, subdir = self.key
        o_nodes, o_fsname, o_subdir = other.key
        if (nodes, fsname) != (o_nodes, o_fsname):
            return False
        return (not subdir or o_subdir == subdir or
                o_subdir.startswith(subdir + '/'))


def parse_share_line(line):
    """Parse ``DEVICE [-o OPTIONS]...`` from a shares file line.

    :returns: a :class:`Share`, or None for a blank or comment line
    :raises ValueError: with the reason, when the line is not valid
    """
    words = line.split()
    if not words or words[0].startswith('#'):
        return None
    device, flags = words[0], words[1:]
    options = []
    while flags:
        flag = flags.pop(0)
        if flag == '-o' and flags:
            options.extend(split_options(flags.pop(0)))
        elif flag.startswith('-o') and len(flag) > 2:
            options.extend(split_options(flag[2:]))
        else:
            raise ValueError(_("unexpected '%(flag)s' after the device; "
                               "mount options are written '-o OPTION[,"
                               "OPTION...]'") % {'flag': flag})
    return Share.parse(device, options)


def parse_shares(lines, source, mount_options=()):
    """Parse the lines of a shares file into Shares, in file order.

    Every line is checked, and the first bad one is reported with its
    number, so an operator can fix the file in one go.  A share that would
    be mounted with ``noflock``, given the options of every share, is
    refused: QEMU's image locks fail on it.

    :param lines: the lines of the file
    :param source: the name of the file, for error messages
    :param mount_options: the mount options of every share
    :raises LustreConfigError: naming the line and what is wrong with it
    """
    shares = []
    for number, line in enumerate(lines, 1):
        where = '%s line %d' % (source, number)
        try:
            share = parse_share_line(line)
        except ValueError as exc:
            raise LustreConfigError(source=where, reason=exc)
        if share is None:
            continue
        if flock_mode(list(mount_options) + share.options) == 'noflock':
            raise LustreConfigError(
                source=where,
                reason=_("%s would be mounted with 'noflock' (the mount "
                         "options of every share, then the line's own): "
                         "QEMU cannot lock volume images there (flock "
                         "fails with ENOSYS); use 'flock'") % share.device)
        for other_number, other in shares:
            if other.contains(share) or share.contains(other):
                reason = _('fileset %(new)s overlaps %(old)s of line '
                           '%(line)d: a volume file would be visible in two '
                           'pools') % {'new': share.device,
                                       'old': other.device,
                                       'line': other_number}
                raise LustreConfigError(source=where, reason=reason)
        shares.append((number, share))
    return [share for _number, share in shares]


def find_mount_helper():
    """Return the path of mount.lustre, or None if no Lustre client."""
    for directory in MOUNT_HELPER_DIRS:
        path = os.path.join(directory, MOUNT_HELPER)
        if os.access(path, os.X_OK):
            return path
    return None


class LustreMountClient(remotefs_brick.RemoteFsClient):
    """os-brick's mount client, for the ``lustre`` file system type.

    ``RemoteFsClient`` computes mount points (``<base>/<md5(device)>``, as
    os-brick's connector and Nova do), reads /proc/mounts and mounts; what
    Lustre changes is small.  Lustre rewrites NIDs in /proc/mounts, so
    whether a share is mounted is decided by its mount point only, never by
    the device column; mount.lustre keeps trying an unreachable MGS for
    minutes, so a mount may be given a time limit.
    """

    def __init__(self, root_helper, execute=None, mount_point_base=None,
                 mount_options=None, mount_timeout=None):
        if not mount_point_base:
            raise brick_exception.InvalidParameterValue(
                err=_('mount_point_base is required'))
        # os-brick 7.1 refuses the type 'lustre' (contrib/os-brick adds it):
        # start as a type it handles plainly, then say which this is.
        super().__init__('glusterfs', root_helper, execute=execute,
                         glusterfs_mount_point_base=mount_point_base,
                         glusterfs_mount_options=mount_options or None)
        self._mount_type = 'lustre'
        self._mount_timeout = mount_timeout

    def is_mounted(self, device):
        return self.get_mount_point(device) in self._read_mounts()

    def _do_mount(self, mount_type, share, mount_path, mount_options=None,
                  flags=None):
        """Run mount(8), within the time limit; lose a race gracefully.

        cinder-volume and cinder-backup on one host may race to mount the
        same fileset; the loser fails, and finds it mounted by the winner.

        :raises LustreMountTimeout: when mount(8) does not finish in time
        """
        cmd = ['mount', '-t', mount_type]
        if mount_options:
            cmd += ['-o', mount_options]
        cmd += list(flags or []) + [share, mount_path]
        kwargs = ({'timeout': self._mount_timeout} if self._mount_timeout
                  else {})
        try:
            self._execute(*cmd, root_helper=self._root_helper,
                          run_as_root=True, check_exit_code=0, **kwargs)
        except subprocess.TimeoutExpired:
            raise LustreMountTimeout(share=share,
                                     timeout=self._mount_timeout)
        except processutils.ProcessExecutionError:
            if mount_path in self._read_mounts():
                LOG.debug('%s was mounted concurrently at %s.', share,
                          mount_path)
                return
            raise

    def mount_with_retries(self, device, flags=None, attempts=1):
        """Mount a fileset unless it is mounted, trying ``attempts`` times.

        A mount that timed out is not tried again: mount.lustre may still
        finish in the background, and a later call finds it mounted.

        :raises LustreException: with what the last attempt said
        """
        for attempt in range(1, attempts + 1):
            try:
                self.mount(device, flags)
                return
            except (processutils.ProcessExecutionError,
                    brick_exception.BrickException, OSError) as exc:
                error = error_text(exc)
                if attempt == attempts:
                    raise LustreException(
                        reason=_('could not mount %(share)s after %(n)d '
                                 'attempts: %(err)s') %
                        {'share': device, 'n': attempts, 'err': error})
                LOG.warning('Mount attempt %(attempt)d of %(share)s failed, '
                            'retrying: %(err)s',
                            {'attempt': attempt, 'share': device,
                             'err': error})
                time.sleep(1)


def parse_size(value, what):
    """Parse a byte count such as ``4194304``, ``64K``, ``4M`` or ``1G``.

    Units are binary, as in lfs(1).  :raises ValueError: naming ``what``
    """
    match = _SIZE_RE.match(str(value).strip())
    if not match:
        raise ValueError(_("%(what)s '%(value)s' is not a size such as "
                           "1048576, 64K, 4M or 1G") % {'what': what,
                                                        'value': value})
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


class Component(collections.namedtuple('Component', 'end stripe_count '
                                                    'stripe_size pool')):
    """One component of a layout: its stripes, up to ``end`` bytes.

    ``end`` is None for a plain layout or the last component (EOF); the
    other fields are None to inherit the filesystem's or directory's
    default, as lfs setstripe does for options it is not given.
    """

    __slots__ = ()

    def setstripe_args(self):
        args = []
        if self.stripe_count is not None:
            args += ['-c', str(self.stripe_count)]
        if self.stripe_size is not None:
            args += ['-S', str(self.stripe_size)]
        if self.pool is not None:
            args += ['-p', self.pool]
        return args


def check_stripe_count(value, what='stripe count'):
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = None
    if count is None or not -1 <= count <= MAX_STRIPE_COUNT:
        raise ValueError(_("%(what)s '%(value)s' must be an integer from -1 "
                           "(all OSTs) to %(max)d; 0 means the filesystem "
                           "default") % {'what': what, 'value': value,
                                         'max': MAX_STRIPE_COUNT})
    return count


def check_stripe_size(value, what='stripe size'):
    size = parse_size(value, what)
    if size % STRIPE_ALIGN or size > MAX_STRIPE_SIZE:
        raise ValueError(_("%(what)s '%(value)s' must be a multiple of 64K "
                           "and at most 4G; 0 means the filesystem "
                           "default") % {'what': what, 'value': value})
    return size


def check_pool(value, what='OST pool'):
    if not _POOL_RE.match(str(value)):
        raise ValueError(_("%(what)s '%(value)s' is not a valid OST pool "
                           "name (1 to 15 letters, digits, '_', '-' or "
                           "'.')") % {'what': what, 'value': value})
    return str(value)


class Layout(tuple):
    """A Lustre file layout: one plain component, or PFL components.

    Built from validated settings, it renders the arguments of
    ``lfs setstripe`` (lfs-setstripe(1)); an empty layout asks for nothing
    and inherits the default of the directory or filesystem.
    """

    __slots__ = ()

    @classmethod
    def plain(cls, stripe_count=None, stripe_size=None, pool=None):
        """A single-component layout; every argument is optional.

        :raises ValueError: saying which value is wrong and why
        """
        component = Component(
            None,
            None if stripe_count in (None, '') else
            check_stripe_count(stripe_count),
            None if stripe_size in (None, '') else
            check_stripe_size(stripe_size),
            None if pool in (None, '') else check_pool(pool))
        if component == Component(None, None, None, None):
            return cls()
        return cls((component,))

    @classmethod
    def composite(cls, spec, what='layout'):
        """Parse a PFL component list such as ``-E 64M -c 1 -E -1 -c 4``.

        Each component starts with ``-E END`` (bytes with an optional K, M,
        G or T suffix; ``-1`` or ``eof`` for the end of the file) followed
        by any of ``-c COUNT``, ``-S SIZE`` and ``-p POOL``.  Ends must
        increase, be multiples of 64 KiB, and the last must be the end of
        the file, so that every byte of a volume has a component.

        :param what: what the list is called, for error messages
        :raises ValueError: saying which component is wrong and why
        """
        try:
            return cls(cls._components(str(spec).split()))
        except ValueError as exc:
            raise ValueError('%s: %s' % (what, exc))

    @staticmethod
    def _components(words):
        """Parse the words of a PFL component list into Components."""
        components = []
        while words:
            flag = words.pop(0)
            if flag not in ('-E', '--component-end') or not words:
                raise ValueError(_("a PFL layout is a list of '-E END "
                                   "[-c COUNT] [-S SIZE] [-p POOL]' "
                                   "components; found '%s'") % flag)
            end_word = words.pop(0)
            number = len(components) + 1
            if end_word in ('-1', 'eof', 'EOF'):
                end = None
            else:
                end = parse_size(end_word, _('end of component %d') % number)
                if end == 0 or end % STRIPE_ALIGN:
                    raise ValueError(_('end of component %(n)d (%(end)s) '
                                       'must be a positive multiple of 64K')
                                     % {'n': number, 'end': end_word})
            if components and (components[-1].end is None or
                               end is not None and
                               end <= components[-1].end):
                raise ValueError(_('component %d must end after the one '
                                   'before it') % number)
            values = {'-c': None, '-S': None, '-p': None}
            while words and words[0] in values:
                option = words.pop(0)
                if not words:
                    raise ValueError(_("'%(opt)s' of component %(n)d has no "
                                       "value") % {'opt': option,
                                                   'n': number})
                values[option] = words.pop(0)
            what = _('component %d') % number
            components.append(Component(
                end,
                None if values['-c'] is None else check_stripe_count(
                    values['-c'], '%s stripe count' % what),
                None if values['-S'] is None else check_stripe_size(
                    values['-S'], '%s stripe size' % what),
                None if values['-p'] is None else check_pool(
                    values['-p'], '%s OST pool' % what)))
        if not components:
            raise ValueError(_('a PFL layout needs at least one component'))
        if components[-1].end is not None:
            raise ValueError(_("the last PFL component must end at the end "
                               "of the file ('-E -1')"))
        return components

    @property
    def is_composite(self):
        """Whether this is a PFL layout of several components."""
        return len(self) > 1

    def with_pool(self, pool):
        """This layout, with ``pool`` for the components that name none."""
        if not pool:
            return self
        if not self:
            return Layout((Component(None, None, None, pool),))
        return Layout(c if c.pool else c._replace(pool=pool) for c in self)

    def setstripe_args(self):
        if len(self) == 1 and self[0].end is None:
            return self[0].setstripe_args()
        args = []
        for component in self:
            end = '-1' if component.end is None else str(component.end)
            args += ['-E', end] + component.setstripe_args()
        return args


class LayoutDefaults(collections.namedtuple('LayoutDefaults',
                                            'layout pool')):
    """What a backend's volume files get when their type does not say.

    ``layout`` is a plain or composite :class:`Layout` without the default
    OST pool, ``pool`` that pool or None.  A backend publishes its defaults
    in the ``lustre_layout`` capability of each pool, as ``lfs setstripe``
    arguments (or ``default``); :meth:`parse` reads them back, so that a
    volume migrating to another backend gets that backend's defaults.
    """

    __slots__ = ()

    @classmethod
    def parse(cls, text):
        """Read the ``lustre_layout`` capability of a pool.

        :raises ValueError: when it is not a layout
        """
        words = str(text or '').split()
        if words in ([], ['default']):
            return cls(Layout(), None)
        if words[0] in ('-E', '--component-end'):
            return cls(Layout.composite(' '.join(words)), None)
        values = {'-c': None, '-S': None, '-p': None}
        while words:
            option = words.pop(0)
            if option not in values or not words:
                raise ValueError(_("'%s' is not a layout such as '-c 4 -S "
                                   "1M -p flash'") % text)
            values[option] = words.pop(0)
        return cls(Layout.plain(values['-c'], values['-S']), values['-p'])


# The client versions that brought what the drivers may use.
Feature = collections.namedtuple('Feature', 'name version')
PFL = Feature('composite layouts (PFL)', (2, 10))
FEATURES = (PFL,
            Feature('coherent flock by default', (2, 12, 3)),
            Feature('fallocate', (2, 14)),
            Feature('SEEK_DATA/SEEK_HOLE', (2, 14)))


def parse_version(text):
    """Parse ``lfs --version`` output (``lfs 2.15.6``) into (2, 15, 6).

    :returns: a tuple of ints, or None if there is no version in it
    """
    match = re.search(r'(\d+)\.(\d+)(?:\.(\d+))?', text or '')
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def format_version(version):
    return '.'.join(str(part) for part in version)


def parse_pool_list(text):
    """Parse ``lfs pool_list FSNAME|PATH`` into the list of pool names.

    The output is ``Pools from FSNAME:`` followed by ``FSNAME.POOL`` lines
    (lctl-pool_list(8)).
    """
    pools = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('Pools from'):
            continue
        _fsname, sep, pool = line.partition('.')
        if sep and pool:
            pools.append(pool)
    return pools


def parse_df_summary(text):
    """Parse ``lfs df`` output into (total, available) bytes.

    The ``filesystem_summary:`` line gives 1K-blocks, Used and Available
    (lfs-df(1)); with ``--pool`` it sums the pool's OSTs only.

    :raises ValueError: if the output has no summary line
    """
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == 'filesystem_summary:':
            return int(fields[1]) * units.Ki, int(fields[3]) * units.Ki
    raise ValueError(_('no filesystem_summary line in lfs df output: %r')
                     % text[:200])


def setstripe(execute, path, layout, run_as_root=False):
    """Give ``path`` a layout: a new empty file, or a directory's default.

    On a file, this must come before any byte is allocated: a layout is
    fixed when the first object is created.
    """
    execute('lfs', 'setstripe', *layout.setstripe_args(), path,
            run_as_root=run_as_root)


def migrate(execute, path, layout, run_as_root=False):
    """Move a file's data to a new layout, in place (lfs-migrate(1)).

    ``--non-block`` makes it fail with EBUSY, rather than wait or cut an
    application off, if anything holds the file open.
    """
    execute('lfs', 'migrate', '--non-block', *layout.setstripe_args(), path,
            run_as_root=run_as_root)


def client_version(execute):
    """The version of the Lustre client tools, or None if unknown."""
    out, _err = execute('lfs', '--version')
    return parse_version(out)


def is_lustre(execute, path):
    """Whether ``path`` is on a Lustre filesystem: lfs getname answers."""
    try:
        execute('lfs', 'getname', path)
    except processutils.ProcessExecutionError:
        return False
    return True


def pools(execute, mount_point):
    """The OST pools of the filesystem mounted at ``mount_point``."""
    out, _err = execute('lfs', 'pool_list', mount_point)
    return parse_pool_list(out)


def pool_capacity(execute, mount_point, pool):
    """(total, available) bytes of one OST pool, from ``lfs df --pool``."""
    out, _err = execute('lfs', 'df', '--pool', pool, mount_point)
    return parse_df_summary(out)


def capacity(path):
    """Return (total, available) bytes of the filesystem holding ``path``.

    A single statfs(2): on Lustre the client sums what the OSTs reported
    (``lazystatfs`` keeps an unreachable OST from blocking it), so this costs
    the same for one volume file or a million, unlike ``du``.
    """
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
