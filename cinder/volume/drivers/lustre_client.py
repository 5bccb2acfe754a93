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
* :func:`capacity` of a mounted fileset, without walking it.

The drivers read as Cinder logic and never build a Lustre command line or
parse Lustre syntax themselves.
"""

import collections
import os
import re

from os_brick import exception as brick_exception
from os_brick import executor
from os_brick.remotefs import remotefs as remotefs_brick
from oslo_concurrency import processutils
from oslo_log import log as logging

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


class LustreException(exception.RemoteFSException):
    message = _('Lustre error: %(reason)s')


class LustreConfigError(exception.InvalidConfigurationValue):
    """A Lustre setting an operator has to correct."""

    message = _('%(source)s: %(reason)s')


class LustreNoSharesMounted(exception.RemoteFSNoSharesMounted):
    message = _('No Lustre share is mounted: %(reason)s')


class LustreNoSuitableShareFound(exception.RemoteFSNoSuitableShareFound):
    message = _('No Lustre share can host a volume of %(volume_size)s GiB: '
                '%(reason)s')


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


def parse_shares(lines, source):
    """Parse the lines of a shares file into Shares, in file order.

    Every line is checked, and the first bad one is reported with its
    number, so an operator can fix the file in one go.

    :param lines: the lines of the file
    :param source: the name of the file, for error messages
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
    os-brick's connector and Nova do) and reads /proc/mounts; it only lacks
    the ``lustre`` type in os-brick 7.1, so its constructor refuses it.
    Lustre rewrites NIDs in /proc/mounts, so whether a share is mounted is
    decided by its mount point only, never by the device column.
    """

    def __init__(self, root_helper, execute=None, mount_point_base=None,
                 mount_options=None):
        # RemoteFsClient.__init__ raises ProtocolNotSupported for 'lustre';
        # set up the executor and the three attributes it would set.
        executor.Executor.__init__(self, root_helper, execute=execute)
        if not mount_point_base:
            raise brick_exception.InvalidParameterValue(
                err=_('mount_point_base is required'))
        self._mount_type = 'lustre'
        self._mount_base = mount_point_base
        self._mount_options = mount_options or None

    def is_mounted(self, device):
        return self.get_mount_point(device) in self._read_mounts()

    def mount(self, device, flags=None):
        """Mount a Lustre fileset at its mount point, unless it is there.

        :param device: the device string, e.g. ``10.0.0.1@tcp:/lfs01``
        :param flags: extra mount(8) arguments, e.g. ``['-o', 'noatime']``
        """
        mount_path = self.get_mount_point(device)
        if mount_path in self._read_mounts():
            LOG.debug('Already mounted: %s', mount_path)
            return
        self._execute('mkdir', '-p', mount_path, check_exit_code=0)
        cmd = ['mount', '-t', 'lustre']
        if self._mount_options:
            cmd.extend(['-o', self._mount_options])
        cmd.extend(flags or [])
        cmd.extend([device, mount_path])
        try:
            self._execute(*cmd, root_helper=self._root_helper,
                          run_as_root=True, check_exit_code=0)
        except processutils.ProcessExecutionError:
            # cinder-volume and cinder-backup on one host may race to mount
            # the same fileset; the loser fails with "already mounted".
            if mount_path in self._read_mounts():
                LOG.debug('%s was mounted concurrently at %s.',
                          device, mount_path)
                return
            raise


def capacity(path):
    """Return (total, available) bytes of the filesystem holding ``path``.

    A single statfs(2): on Lustre the client sums what the OSTs reported
    (``lazystatfs`` keeps an unreachable OST from blocking it), so this costs
    the same for one volume file or a million, unlike ``du``.
    """
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
