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

"""Volume driver for Lustre.

Volumes are files on Lustre filesets that the volume service mounts as a
Lustre client: raw files (sparse, or preallocated with fallocate) or qcow2
files, with snapshots as qcow2 overlays.  Each fileset of the shares file is
a pool of the backend.  An encrypted volume is a raw file that holds a LUKS
device, as a block device would: the files on the share only ever hold its
ciphertext.  Everything about Lustre itself (device syntax,
mounting, capacity) is in :mod:`cinder.volume.drivers.lustre_client`.
"""

import binascii
import collections
import contextlib
import errno
import functools
import json
import math
import os
import re
import stat
import tempfile

from castellan import key_manager
from oslo_concurrency import processutils as putils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import units

from cinder import context as cinder_context
from cinder import coordination
from cinder import exception
from cinder.i18n import _
from cinder.image import format_inspector
from cinder.image import image_utils
from cinder import interface
from cinder import objects
from cinder.objects import fields
from cinder import utils
from cinder.volume import configuration
from cinder.volume.drivers import lustre_client
from cinder.volume.drivers import remotefs
from cinder.volume import volume_utils

VERSION = '1.2.0'

LOG = logging.getLogger(__name__)

lustre_opts = [
    cfg.StrOpt('lustre_shares_config',
               default='/etc/cinder/lustre_shares',
               help='File listing the Lustre filesets that hold volumes, one '
                    'per line, each a pool of the backend: the client mount '
                    'device "MGSNID[,MGSNID...][:MGSNID...]:/FSNAME[/SUBDIR]" '
                    'as mount.lustre(8) defines it, optionally followed by '
                    '"-o OPTION[,OPTION...]" for that fileset only. Lines '
                    'starting with # are comments.'),
    cfg.StrOpt('lustre_mount_point_base',
               default='$state_path/mnt',
               help='Directory under which the volume service mounts each '
                    'fileset, at <base>/<md5 of the device string>. It must '
                    'be writable by the volume service user. Connections '
                    'name it, so a cinder-backup host mounts filesets under '
                    'the same path, which must exist there too; Nova uses '
                    'its own [libvirt] lustre_mount_point_base.'),
    cfg.StrOpt('lustre_mount_options',
               default='flock',
               help='Lustre client mount options used for every fileset '
                    '(mount.lustre(8)). Keep "flock": QEMU locks volume '
                    'images, and only "flock" makes those locks coherent '
                    'across hosts ("localflock" does not, "noflock" makes '
                    'them fail). nas_mount_options, if set, replaces this.'),
    cfg.IntOpt('lustre_mount_attempts',
               default=3,
               min=1,
               help='How many times to try mounting a fileset before '
                    'reporting it unavailable.'),
    cfg.IntOpt('lustre_mount_timeout',
               default=300,
               min=1,
               help='Seconds a mount of a fileset may take before it is '
                    'reported as failed. mount.lustre keeps trying an '
                    'unreachable MGS for minutes; a mount that times out '
                    'is not retried, and is found mounted later if it '
                    'succeeds in the end.'),
    cfg.BoolOpt('lustre_sparsed_volumes',
                default=True,
                help='Create volumes thin (sparse files, or qcow2 if '
                     'lustre_qcow2_volumes is set) unless their volume type '
                     'asks for "provisioning:type=thick". If False, volumes '
                     'are thick unless their type asks for thin: raw files '
                     'preallocated with fallocate, or written with zeros '
                     'where the OSTs cannot preallocate.'),
    cfg.BoolOpt('lustre_qcow2_volumes',
                default=False,
                help='Create thin volumes as qcow2 files rather than sparse '
                     'raw files. Raw files give the best I/O performance on '
                     'Lustre; qcow2 files only allocate what the guest '
                     'writes even through copies that do not keep holes. '
                     'Volumes of multiattach or encrypted types are raw '
                     'files whatever this says.'),
    cfg.BoolOpt('lustre_snapshot_support',
                default=True,
                help='Allow snapshots, kept as qcow2 overlays of the volume '
                     'file. Snapshots of attached volumes are taken and '
                     'deleted by Nova (assisted volume snapshots), which '
                     'needs its Lustre volume driver on compute hosts. '
                     'Multiattach volumes cannot have snapshots.'),
    cfg.IntOpt('lustre_stripe_count',
               min=-1,
               max=lustre_client.MAX_STRIPE_COUNT,
               help='Number of OSTs the data of each volume file is striped '
                    'over (lfs setstripe -c), unless its volume type sets '
                    'lustre:stripe_count. -1 stripes over all OSTs. When '
                    'unset, the fileset\'s default layout applies.'),
    cfg.StrOpt('lustre_stripe_size',
               help='Stripe size of volume files, a multiple of 64K such '
                    'as 1M or 4M (lfs setstripe -S), unless the volume type '
                    'sets lustre:stripe_size. When unset, the fileset\'s '
                    'default applies.'),
    cfg.StrOpt('lustre_ost_pool',
               help='OST pool that volume files are allocated from (lfs '
                    'setstripe -p), unless the volume type sets '
                    'lustre:pool. When unset, any OST.'),
    cfg.StrOpt('lustre_layout',
               help='Composite (PFL) layout of volume files, as lfs '
                    'setstripe component options, for example '
                    '"-E 64M -c 1 -E -1 -c 4 -S 4M", unless the volume type '
                    'sets lustre:layout or its own stripe count or size. '
                    'It takes the place of lustre_stripe_count and '
                    'lustre_stripe_size.'),
    cfg.BoolOpt('lustre_ost_pools_as_pools',
                default=False,
                help='Report each OST pool of each share as a Cinder pool, '
                     'named FILESET.POOL, with the capacity of that pool\'s '
                     'OSTs (lfs df --pool), and allocate the volumes the '
                     'scheduler places there from that OST pool. Volume '
                     'types choose an OST pool with the extra spec '
                     '"ost_pool=NAME", which the scheduler matches. Shares '
                     'without OST pools are reported whole.'),
]

CONF = cfg.CONF
CONF.register_opts(lustre_opts, group=configuration.SHARED_CONF_GROUP)

# Options of the RemoteFS base class that this driver honours.
_NAS_OPTS_HONOURED = ('nas_secure_file_operations',
                      'nas_secure_file_permissions', 'nas_mount_options')

_VOLUME_FORMATS = ('raw', 'qcow2')

# The name of a snapshot overlay is the volume's file name, a dot and the
# snapshot's id.
_UUID_PATTERN = '[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}'
_MOUNT_POINT_RE = re.compile('^[0-9a-f]{32}$')
# A .info file holds a line or two per snapshot.
_MAX_INFO_BYTES = units.Mi
# What Cinder's image format inspector reads of a qcow2 header.
_HEADER_BYTES = 512


def _unsafe_image_reason(header, backing_allowed):
    """Why Cinder's image safety check refuses an image, from its header.

    :param header: the first bytes of the image, or None if unreadable
    :param backing_allowed: whether the check allowed a backing file
    """
    inspector = format_inspector.QcowInspector()
    if header:
        try:
            inspector.eat_chunk(header[:_HEADER_BYTES])
        except format_inspector.ImageFormatError:
            pass
    if inspector.format_match:
        if inspector.has_data_file:
            return _('it is a qcow2 image with an external data file')
        if inspector.has_backing_file and not backing_allowed:
            return _('it is a qcow2 image with a backing file')
        if inspector.has_unknown_features:
            return _('it is a qcow2 image with features unknown to '
                     "Cinder's image safety check")
    return _("it failed Cinder's image safety check (an external data "
             "file, a backing file, unknown qcow2 features, or a VMDK "
             "whose extents are outside it)")


class LustreUnsafeFile(lustre_client.LustreException):
    """A file on a share that the driver refuses to use.

    Other Lustre clients may write into a fileset: what the driver finds
    there is checked before it is used, and refused with this error.
    """

    message = _('Refusing %(path)s: %(reason)s')


# A Cinder pool of this backend: a share, and an OST pool in OST-pool mode.
PoolLocation = collections.namedtuple('PoolLocation', 'device ost_pool')
# A file name as the driver names volume files: the volume's name id, and
# whether it is the base file (rather than an overlay or .info file).
OwnName = collections.namedtuple('OwnName', 'name_id is_base')


class ChainFile(collections.namedtuple('ChainFile', 'name path fmt info')):
    """A checked file of a volume's backing chain and its qemu-img info."""

    __slots__ = ()


@interface.volumedriver
class LustreDriver(remotefs.RemoteFSManageableVolumesMixin,
                   remotefs.RemoteFSSnapDriverDistributed):
    """Cinder volume driver for Lustre filesets.

    Version history:

    .. code-block:: none

        1.0.0 - Initial driver: raw (sparse or preallocated) and qcow2
                volumes on Lustre filesets, one pool per fileset;
                active/active (several volume services on one backend).
        1.1.0 - Encrypted volumes (LUKS, decrypted by QEMU).
        1.2.0 - Multiattach volumes are raw files on every pool; retype
                to a multiattach type converts a qcow2 volume.
    """

    driver_volume_type = 'lustre'
    driver_prefix = 'lustre'
    volume_backend_name = 'Lustre'
    VERSION = VERSION

    # ThirdPartySystems wiki page
    CI_WIKI_NAME = 'Lustre_CI'

    # Several volume services may serve one backend (a Cinder cluster):
    # every operation on a volume's files holds the volume's coordination
    # lock, and nothing at start-up unmounts or removes what another
    # service may be using.
    SUPPORTS_ACTIVE_ACTIVE = True

    # Names of files a volume can be made from (manage_existing), at the
    # top of a share; the files this driver names itself are excluded.
    _MANAGEABLE_IMAGE_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]*$')

    def __init__(self, execute=putils.execute, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(lustre_opts)
        self.base = os.path.realpath(
            self.configuration.lustre_mount_point_base)
        mount_options = self.configuration.nas_mount_options
        if mount_options is None:
            mount_options = self.configuration.lustre_mount_options
        self._mount_options = lustre_client.split_options(mount_options)
        self._remotefsclient = lustre_client.LustreMountClient(
            utils.get_root_helper(), execute=execute,
            mount_point_base=self.base,
            mount_options=','.join(self._mount_options),
            mount_timeout=self.configuration.lustre_mount_timeout)
        self.max_over_subscription_ratio = (
            volume_utils.get_max_over_subscription_ratio(
                self.configuration.max_over_subscription_ratio,
                supports_auto=kwargs.get('supports_auto_mosr', False)))
        self._setup_done = False
        self._fallocate_unsupported = set()
        self._client_version = None
        self._lfs_available = False
        self._lustre_mounts = set()
        self._lustre_shares = {}
        # Formats of the chain files an operation has checked, by path.
        self._known_formats = {}
        # Encrypted volumes are LUKS devices in raw files (see
        # _write_luks_header); the base class refuses them unless this
        # is set.
        self._supports_encryption = True

    @staticmethod
    def get_driver_options():
        return lustre_opts + [opt for opt in remotefs.nas_opts
                              if opt.name in _NAS_OPTS_HONOURED]

    # Setup

    def do_setup(self, context):
        """Check the Lustre client, load the shares and mount them.

        Shares already mounted are used as they are: this never unmounts,
        since volumes may be attached or backed up from this host.
        """
        super().do_setup(context)
        try:
            lustre_client.check_options(self._mount_options)
        except ValueError as exc:
            option = ('nas_mount_options'
                      if self.configuration.nas_mount_options is not None
                      else 'lustre_mount_options')
            raise lustre_client.LustreConfigError(source=option, reason=exc)
        if not lustre_client.find_mount_helper():
            raise lustre_client.LustreException(
                reason=_('%(helper)s was not found in %(dirs)s: install the '
                         'Lustre client on this host') %
                {'helper': lustre_client.MOUNT_HELPER,
                 'dirs': ', '.join(lustre_client.MOUNT_HELPER_DIRS)})
        self._check_mount_point_base()
        self._check_layout_options()
        self._check_client()
        self._ensure_shares_mounted()
        if not self._mounted_shares:
            raise lustre_client.LustreNoSharesMounted(
                reason=_('none of the %(count)d shares in %(file)s could be '
                         'mounted; see the errors above') %
                {'count': len(self.shares),
                 'file': self.configuration.lustre_shares_config})
        self.set_nas_security_options(self._is_voldb_empty_at_startup)
        self._setup_done = True

    def _check_client(self):
        """Check the lfs tool, the client version and the layout settings.

        Layouts and OST pools need lfs; features newer than the client are
        refused (PFL layouts before 2.10) or worked around with a warning
        (preallocation before 2.14 writes zeros).
        """
        try:
            self._client_version = lustre_client.client_version(
                self._execute)
            self._lfs_available = True
        except (OSError, putils.ProcessExecutionError) as exc:
            if self._uses_lfs():
                raise lustre_client.LustreException(
                    reason=_('lfs, needed for layouts and OST pools, does '
                             'not run: %s') % lustre_client.error_text(exc))
            LOG.warning('lfs does not run (%s): shares cannot be checked '
                        'to be Lustre filesystems.',
                        lustre_client.error_text(exc))
            return
        version = self._client_version
        if version is None:
            LOG.warning('The version of the Lustre client is unknown.')
            return
        LOG.info('Lustre client %s.', lustre_client.format_version(version))
        for feature in lustre_client.FEATURES:
            if version >= feature.version:
                continue
            missing = {'have': lustre_client.format_version(version),
                       'feature': feature.name,
                       'need': lustre_client.format_version(feature.version)}
            if feature is lustre_client.PFL and (
                    self.configuration.lustre_layout):
                raise lustre_client.LustreConfigError(
                    source='lustre_layout',
                    reason=_('Lustre client %(have)s has no %(feature)s; '
                             '%(need)s or later is needed') % missing)
            LOG.warning('Lustre client %(have)s has no %(feature)s '
                        '(%(need)s or later).', missing)

    def _check_layout_options(self):
        """Refuse bad layout defaults now, not at the first volume."""
        conf = self.configuration
        checks = (('lustre_stripe_count', lustre_client.check_stripe_count),
                  ('lustre_stripe_size', lustre_client.check_stripe_size),
                  ('lustre_ost_pool', lustre_client.check_pool),
                  ('lustre_layout', lustre_client.Layout.composite))
        for option, check in checks:
            value = getattr(conf, option)
            if value in (None, ''):
                continue
            try:
                check(value, option)
            except ValueError as exc:
                raise lustre_client.LustreConfigError(source=option,
                                                      reason=exc)

    def _uses_lfs(self):
        conf = self.configuration
        return bool(conf.lustre_ost_pools_as_pools or conf.lustre_layout or
                    conf.lustre_stripe_count is not None or
                    conf.lustre_stripe_size or conf.lustre_ost_pool)

    def _check_mount_point_base(self):
        try:
            os.makedirs(self.base, exist_ok=True)
        except OSError as exc:
            raise lustre_client.LustreConfigError(
                source='lustre_mount_point_base',
                reason=_('cannot create %(base)s: %(err)s') %
                {'base': self.base, 'err': exc.strerror})
        if not os.access(self.base, os.W_OK | os.X_OK):
            raise lustre_client.LustreConfigError(
                source='lustre_mount_point_base',
                reason=_('%s is not writable by the volume service user, '
                         'which creates the mount points in it') % self.base)

    def check_for_setup_error(self):
        """Refuse to run without a share; the base class checks nothing."""
        if not self._mounted_shares:
            raise lustre_client.LustreNoSharesMounted(
                reason=_('no share is mounted'))

    def _load_shares_config(self, share_file=None):
        """Load the shares file: ``shares`` maps each device to its options.

        The base class reads the file again at each capacity update, which
        lets an operator add a share without a restart.  Once the driver
        runs, a shares file that has become invalid keeps the last valid
        list in use, so a typo does not stop the backend.

        :raises LustreConfigError: naming the file, the line and the fault
        """
        try:
            shares = self._read_shares(share_file)
        except exception.InvalidConfigurationValue as exc:
            if not self._setup_done:
                raise
            LOG.error('Keeping the previous Lustre shares: %s', exc)
            return
        self._lustre_shares = {share.device: share for share in shares}
        self.shares = {share.device: ','.join(share.options) or None
                       for share in shares}

    def _read_shares(self, share_file):
        """The Shares of a shares file, checked as a set."""
        source = 'lustre_shares_config'
        if not share_file:
            raise lustre_client.LustreConfigError(
                source=source, reason=_('no shares file is configured'))
        try:
            lines = self._read_config_file(share_file)
        except OSError as exc:
            raise lustre_client.LustreConfigError(
                source=source, reason=_('cannot read %(file)s: %(err)s') %
                {'file': share_file, 'err': exc.strerror})
        shares = lustre_client.parse_shares(lines, share_file,
                                            self._mount_options)
        if not shares:
            raise lustre_client.LustreConfigError(
                source=share_file, reason=_('no Lustre share is listed'))
        pools = {}
        for share in shares:
            if share.fileset in pools:
                raise lustre_client.LustreConfigError(
                    source=share_file,
                    reason=_('%(a)s and %(b)s are both fileset %(fileset)s '
                             'of different filesystems; their pools would '
                             'have the same name') %
                    {'a': pools[share.fileset].device, 'b': share.device,
                     'fileset': share.fileset})
            pools[share.fileset] = share
            self._check_flock(share)
        return shares

    def _check_flock(self, share):
        mode = lustre_client.flock_mode(self._mount_options + share.options)
        if mode == 'localflock':
            LOG.warning("Lustre share %s is mounted with 'localflock': "
                        "image locks are not seen by other hosts, so two "
                        "hosts could open one volume. Use 'flock'.",
                        share.device)
        elif mode is None:
            LOG.warning("Lustre share %s has no flock mount option: Lustre "
                        "clients older than 2.12.3 then refuse the image "
                        "locks QEMU takes. Add 'flock'.", share.device)

    def _lustre_share(self, device):
        """The Share of a device, also one gone from the shares file.

        :raises ValueError: when the device is not a Lustre device
        """
        share = self._lustre_shares.get(device)
        return share or lustre_client.Share.parse(device)

    def _ensure_share_mounted(self, device):
        """Mount a share with its own options; it must hold Lustre."""
        try:
            # Also a volume's share removed from the shares file.
            share = self._lustre_share(device)
        except ValueError as exc:
            raise lustre_client.LustreException(reason=exc)
        flags = ['-o', ','.join(share.options)] if share.options else []
        mount_point = self._get_mount_point_for_share(device)
        if not self._remotefsclient.is_mounted(device):
            self._lustre_mounts.discard(mount_point)
            self._remotefsclient.mount_with_retries(
                device, flags, self.configuration.lustre_mount_attempts)
        self._check_is_lustre(device, mount_point)

    def _check_is_lustre(self, device, mount_point):
        """Refuse a mount point that does not hold a Lustre filesystem.

        Something else mounted there (a local directory bound over the
        mount point, say) would silently take the volumes.  Checked once
        per mount; without a working lfs it cannot be checked.
        """
        if mount_point in self._lustre_mounts:
            return
        if self._lfs_available and not lustre_client.is_lustre(
                self._execute, mount_point):
            raise lustre_client.LustreException(
                reason=_('%(mp)s, where %(share)s should be mounted, is not '
                         'a Lustre filesystem') % {'mp': mount_point,
                                                   'share': device})
        self._lustre_mounts.add(mount_point)

    def set_nas_security_options(self, is_new_cinder_install):
        """Settle the 'auto' NAS security options, as the NFS driver does.

        The marker file of the base class on the first share records the
        decision.  In secure mode file operations run as the service user.
        """
        mount_point = self._get_mount_point_for_share(self._mounted_shares[0])
        conf = self.configuration
        conf.nas_secure_file_permissions = (
            self._determine_nas_security_option_setting(
                conf.nas_secure_file_permissions, mount_point,
                is_new_cinder_install))
        conf.nas_secure_file_operations = (
            self._determine_nas_security_option_setting(
                conf.nas_secure_file_operations, mount_point,
                is_new_cinder_install))
        if conf.nas_secure_file_operations == 'true':
            self._execute_as_root = False
        else:
            LOG.warning('Lustre volume files are handled as root '
                        '(nas_secure_file_operations=false).')

    # Pools

    def _fileset(self, device):
        return self._lustre_share(device).fileset

    def _pool(self, pool_name):
        """Where a Cinder pool of this backend is.

        Pools are named after the fileset of their share, and in OST-pool
        mode FILESET.OSTPOOL.

        :returns: a :class:`PoolLocation`, or None if unknown
        """
        candidates = []
        for device in self._mounted_shares:
            fileset = self._fileset(device)
            if pool_name == fileset:
                return PoolLocation(device, None)
            if (self.configuration.lustre_ost_pools_as_pools and
                    pool_name.startswith(fileset + '.')):
                candidates.append((len(fileset), device,
                                   pool_name[len(fileset) + 1:]))
        if candidates:
            _length, device, ost_pool = max(candidates)
            return PoolLocation(device, ost_pool)
        return None

    def _ost_pool(self, volume):
        """The OST pool of the Cinder pool a volume was placed in, if any."""
        if not self.configuration.lustre_ost_pools_as_pools:
            return None
        pool_name = volume_utils.extract_host(volume.host, level='pool')
        found = self._pool(pool_name) if pool_name else None
        return found.ost_pool if found else None

    def get_pool(self, volume):
        """The volume's pool, from its host or else from its share."""
        pool_name = volume_utils.extract_host(volume.host, level='pool')
        if pool_name:
            return pool_name
        if not volume.provider_location:
            return None
        return self._fileset(volume.provider_location)

    def _find_share(self, volume):
        """Return the share for a new volume.

        The scheduler picked the pool; without one (a driver called
        directly), take the share with the most space available.
        """
        if not self._mounted_shares:
            raise lustre_client.LustreNoSharesMounted(
                reason=_('no share is mounted'))
        pool_name = volume_utils.extract_host(volume.host, level='pool')
        if pool_name:
            found = self._pool(pool_name)
            if found is None:
                raise lustre_client.LustreNoSuitableShareFound(
                    volume_size=volume.size,
                    reason=_('pool %s is not a mounted share') % pool_name)
            return found.device
        needed = volume.size * units.Gi if self._is_thick(volume) else 1
        available = {
            device: self._get_capacity_info(device)[1]
            for device in self._mounted_shares}
        device = max(available, key=available.get)
        if available[device] < needed:
            raise lustre_client.LustreNoSuitableShareFound(
                volume_size=volume.size,
                reason=_('the share with most space has %d GiB available') %
                (available[device] // units.Gi))
        return device

    def _get_available_capacity(self, device):
        """(available, total) bytes from one statfs, not the base's df."""
        total, available = lustre_client.capacity(
            self._get_mount_point_for_share(device))
        return available, total

    def _pool_capacities(self, device):
        """The Cinder pools of a share: (name, OST pool, total, available).

        One statfs for the share, or in OST-pool mode one ``lfs df --pool``
        per OST pool: the cost does not grow with the number of volumes.
        """
        fileset = self._fileset(device)
        mount_point = self._get_mount_point_for_share(device)
        if self.configuration.lustre_ost_pools_as_pools:
            try:
                ost_pools = lustre_client.pools(self._execute, mount_point)
                found = [('%s.%s' % (fileset, pool), pool) +
                         lustre_client.pool_capacity(self._execute,
                                                     mount_point, pool)
                         for pool in ost_pools]
            except (putils.ProcessExecutionError, ValueError) as exc:
                LOG.error('Cannot read the OST pools of %(share)s, '
                          'reporting it whole: %(err)s',
                          {'share': device,
                           'err': lustre_client.error_text(exc)})
                found = []
            if found:
                return found
        total, available, _used = self._get_capacity_info(device)
        return [(fileset, None, total, available)]

    def _update_volume_stats(self):
        """Report the pools of the mounted shares.

        Provisioned capacity is left to the volume manager, which counts
        the volumes it has allocated per pool from its own records: stats
        never walk the filesystem.
        """
        self._ensure_shares_mounted()
        version = (lustre_client.format_version(self._client_version)
                   if self._client_version else 'unknown')
        pools = []
        for device in self._mounted_shares:
            for name, ost_pool, total, available in self._pool_capacities(
                    device):
                pool = {
                    'pool_name': name,
                    'total_capacity_gb': round(total / units.Gi, 2),
                    'free_capacity_gb': round(available / units.Gi, 2),
                    'reserved_percentage':
                        self.configuration.reserved_percentage,
                    'max_over_subscription_ratio':
                        self.max_over_subscription_ratio,
                    'thin_provisioning_support': True,
                    'thick_provisioning_support': True,
                    'sparse_copy_volume': True,
                    'online_extend_support': True,
                    # Multiattach volumes are always raw files, which two
                    # guests may share (see _new_volume_format).
                    'multiattach': True,
                    'QoS_support': False,
                    'location_info': 'LustreDriver:%s' % device,
                    'lustre_version': version,
                    'lustre_layout': ' '.join(
                        self._layout({}, ost_pool).setstripe_args()) or
                    'default',
                }
                if ost_pool:
                    pool['ost_pool'] = ost_pool
                pools.append(pool)
        backend_name = self.configuration.safe_get('volume_backend_name')
        self._stats = {
            'volume_backend_name': backend_name or self.volume_backend_name,
            'vendor_name': self.vendor_name,
            'driver_version': self.VERSION,
            'storage_protocol': self.driver_volume_type,
            'total_capacity_gb': round(
                sum(pool['total_capacity_gb'] for pool in pools), 2),
            'free_capacity_gb': round(
                sum(pool['free_capacity_gb'] for pool in pools), 2),
            'lustre_version': version,
            'pools': pools,
        }

    # Layouts

    def _layout_defaults(self):
        """This backend's default layout and OST pool, from its options."""
        conf = self.configuration
        if conf.lustre_layout:
            layout = lustre_client.Layout.composite(conf.lustre_layout,
                                                    'lustre_layout')
        else:
            layout = lustre_client.Layout.plain(conf.lustre_stripe_count,
                                                conf.lustre_stripe_size)
        return lustre_client.LayoutDefaults(layout,
                                            conf.lustre_ost_pool or None)

    def _layout(self, specs, ost_pool=None, defaults=None):
        """The layout of a volume's files, from its type and the backend.

        A type's ``lustre:layout`` (a PFL component list) wins, then its
        ``lustre:stripe_count`` and ``lustre:stripe_size`` (completed by
        the backend's defaults), then the backend's ``lustre_layout``, then
        its stripe defaults.  The OST pool is the type's ``lustre:pool``,
        else the Cinder pool's OST pool, else ``lustre_ost_pool``; it goes
        to every component that does not name its own.

        :param specs: the extra specs of the volume type
        :param ost_pool: the OST pool of the Cinder pool (OST-pool mode)
        :param defaults: the backend's :class:`LayoutDefaults`; by default
                         this backend's
        :raises InvalidVolumeType: naming the spec that is wrong
        """
        defaults = defaults or self._layout_defaults()
        try:
            pool = specs.get('lustre:pool')
            if pool is not None:
                lustre_client.check_pool(pool, 'lustre:pool')
                if ost_pool and pool != ost_pool:
                    raise ValueError(_(
                        "lustre:pool asks for OST pool '%(want)s' but the "
                        "volume was placed in Cinder pool of OST pool "
                        "'%(have)s'; select it with the extra spec "
                        "ost_pool=%(want)s") % {'want': pool,
                                                'have': ost_pool})
            own_stripes = ('lustre:stripe_count' in specs or
                           'lustre:stripe_size' in specs)
            if 'lustre:layout' in specs:
                if own_stripes:
                    raise ValueError(_(
                        'lustre:layout cannot be combined with '
                        'lustre:stripe_count or lustre:stripe_size; put '
                        'them in its components'))
                layout = lustre_client.Layout.composite(
                    specs['lustre:layout'], 'lustre:layout')
            elif defaults.layout.is_composite and not own_stripes:
                layout = defaults.layout
            else:
                default = (defaults.layout[0] if defaults.layout and
                           not defaults.layout.is_composite else
                           lustre_client.Component(None, None, None, None))
                count = specs.get('lustre:stripe_count')
                size = specs.get('lustre:stripe_size')
                layout = lustre_client.Layout.plain(
                    default.stripe_count if count is None else
                    lustre_client.check_stripe_count(
                        count, 'lustre:stripe_count'),
                    default.stripe_size if size is None else
                    lustre_client.check_stripe_size(
                        size, 'lustre:stripe_size'))
            return layout.with_pool(pool or ost_pool or defaults.pool)
        except ValueError as exc:
            raise exception.InvalidVolumeType(reason=str(exc))

    @staticmethod
    def _volume_specs(volume):
        """The extra specs of a volume's type."""
        volume_type = getattr(volume, 'volume_type', None)
        return (volume_type.extra_specs or {}) if volume_type else {}

    def _volume_layout(self, volume):
        return self._layout(self._volume_specs(volume),
                            self._ost_pool(volume))

    def _set_layout(self, layout, path):
        """Create an empty file with a layout, before anything allocates.

        A file's layout is fixed once it has data, so this comes first;
        the commands that then fill the file keep it (they truncate and
        write, never replace the file).
        """
        if layout:
            lustre_client.setstripe(self._execute, path, layout,
                                    run_as_root=self._execute_as_root)

    # Volume files

    def _is_thick(self, volume):
        """Whether a volume is preallocated, by type or by default."""
        provisioning = self._volume_specs(volume).get('provisioning:type')
        if provisioning in ('thin', 'thick'):
            return provisioning == 'thick'
        return not self.configuration.lustre_sparsed_volumes

    @classmethod
    def _is_multiattach(cls, volume):
        """Whether several guests may attach a volume at once.

        The volume's flag or its type's spec: the new volume of a retype
        through Cinder's generic migration has the new type but the old
        volume's flag.
        """
        return bool(volume.multiattach) or (
            cls._volume_specs(volume).get('multiattach') == '<is> True')

    def _new_volume_format(self, volume):
        """The format to create a volume's file in.

        Multiattach volumes are always raw: guests share a raw file, never
        a qcow2 file (QEMU caches its metadata).  A format already in the
        volume's records was asked for by this driver (raw temporary
        volumes for cinder-backup) or copied from the volume that Cinder's
        generic migration copies byte for byte into this one; otherwise
        thin volumes are qcow2 if so configured, and thick ones raw.
        Encrypted volumes are always raw: a hypervisor decrypts a LUKS
        device in a raw file only (see :meth:`_write_luks_header`).

        :raises VolumeDriverException: for a multiattach volume that
                                       would receive a qcow2 file's bytes
        """
        requested = self._records(volume).get('format')
        if self._is_multiattach(volume):
            if requested not in (None, 'raw'):
                raise exception.VolumeDriverException(
                    message=_('volume %(id)s is a multiattach volume, so '
                              'a raw file, but Cinder would copy into it '
                              'the bytes of a %(fmt)s file (a generic '
                              'migration); retype the %(fmt)s volume to '
                              'the multiattach type in its own pool, where '
                              'the driver converts it, then migrate it') %
                    {'id': volume.id, 'fmt': requested})
            return 'raw'
        if requested in _VOLUME_FORMATS:
            return requested
        if volume.encryption_key_id:
            return 'raw'
        if self.configuration.lustre_qcow2_volumes and not self._is_thick(
                volume):
            return 'qcow2'
        return 'raw'

    def _volume_format(self, volume):
        """The format of a volume's active file, from the records.

        Formats are never probed: a raw volume may hold a qcow2 header a
        guest wrote.  See :meth:`_file_format`.
        """
        snap_info = self._snap_info(volume)
        return self._file_format(volume,
                                 snap_info.get('active', volume.name),
                                 snap_info)

    def _records(self, volume):
        """The driver's records of a volume: its admin metadata.

        ``format`` is the format of the active file, ``base_format`` that
        of the base file under the snapshots.
        """
        self._load_admin_metadata(volume)
        with volume.obj_as_admin():
            return volume.admin_metadata

    def _load_admin_metadata(self, volume):
        """Give a volume object its admin metadata, whoever loaded it.

        An object loaded for a non-admin request holds an empty dict there
        (Cinder hides admin metadata from users): the format record would
        look missing, and saving the object would drop what Cinder keeps
        there.  Such an object gets the records from the database.
        """
        ctxt = volume.obj_context
        if ctxt is None or ctxt.is_admin:
            return
        volume.admin_metadata = self.db.volume_admin_metadata_get(
            cinder_context.get_admin_context(), volume.id)
        volume.obj_reset_changes(['admin_metadata'])

    def _record_format(self, volume, fmt):
        """Record the format of a new file of a volume without snapshots."""
        self._load_admin_metadata(volume)
        with volume.obj_as_admin():
            volume.admin_metadata['format'] = fmt
            volume.admin_metadata.pop('base_format', None)
            volume.save()

    @staticmethod
    def _checked_format(volume, fmt):
        if fmt not in _VOLUME_FORMATS:
            raise exception.InvalidVolume(
                reason=_("volume %(id)s has format '%(fmt)s'; the Lustre "
                         "driver handles raw and qcow2") %
                {'id': volume.id, 'fmt': fmt})
        return fmt

    def _file_format(self, volume, filename, snap_info=None):
        """The format of one file of a volume's chain.

        Overlays are qcow2 files this driver made.  The base file has the
        format recorded as ``base_format`` just before the first snapshot
        (:meth:`_record_base_format`), which stays true when the snapshot
        was never made: the base class records ``format`` (the overlay's)
        before the ``.info`` file, and a service killed in between leaves
        only the base file.  Without snapshots and that record, ``format``
        is the base file's (:meth:`_record_format`), raw if unrecorded.
        """
        if filename != volume.name:
            return 'qcow2'
        if snap_info is None:
            snap_info = self._snap_info(volume)
        records = self._records(volume)
        fmt = records.get('base_format')
        if fmt is None and snap_info.get('active', volume.name) == (
                volume.name):
            fmt = records.get('format')
        return self._checked_format(volume, fmt or 'raw')

    # Files on the shares
    #
    # A fileset is mounted by many other Lustre clients; whatever is found
    # in it (.info entries, backing files, names in a listing) is untrusted.
    # Every file the driver opens, hands to qemu-img, a hypervisor or a
    # backup, writes or deletes is checked here first: named as the driver
    # names its files, directly in a share's mount point, a regular file
    # with a single link (never followed through a symbolic link), in the
    # format the driver recorded, its whole backing chain the same.

    def _refuse(self, path, reason):
        LOG.error('Refusing %(path)s: %(reason)s',
                  {'path': path, 'reason': reason})
        raise LustreUnsafeFile(path=path, reason=reason)

    @staticmethod
    def _is_overlay_name(volume_name, name):
        return bool(re.fullmatch(
            r'%s\.%s' % (re.escape(volume_name), _UUID_PATTERN), name))

    def _is_volume_file_name(self, volume_name, name):
        """Whether a name is the base file or a snapshot overlay's."""
        return name == volume_name or self._is_overlay_name(volume_name,
                                                            name)

    def _check_file(self, path, volume_name=None):
        """Check where a file is, its name and its type, never following it.

        :param volume_name: the file must belong to this volume; None for
                            a file an administrator hands over (manage)
        :returns: the file's lstat result
        :raises LustreUnsafeFile: naming the file and what is wrong
        """
        directory, name = os.path.split(path)
        if (os.path.dirname(directory) != self.base or
                not _MOUNT_POINT_RE.match(os.path.basename(directory))):
            self._refuse(path, _('it is not directly in the mount point of '
                                 'a share under %s') % self.base)
        if volume_name is None:
            if not self._MANAGEABLE_IMAGE_RE.match(name):
                self._refuse(path, _('its name is not a plain file name'))
        elif not self._is_volume_file_name(volume_name, name):
            self._refuse(path, _('it is not named as a file of %s') %
                         volume_name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise lustre_client.LustreException(
                reason=_('%s does not exist') % path)
        if stat.S_ISLNK(info.st_mode):
            self._refuse(path, _('it is a symbolic link'))
        if not stat.S_ISREG(info.st_mode):
            self._refuse(path, _('it is not a regular file'))
        if info.st_nlink != 1:
            self._refuse(path, _('it has %d hard links; the driver never '
                                 'links its files') % info.st_nlink)
        return info

    def _qemu_img_info(self, path, volume_name, img_format=None):
        """The checked qemu-img info of one file of a share.

        The file itself is checked (:meth:`_check_file`), its format is
        the one recorded (never probed, except for a file an administrator
        hands over), and it must have no data file and, if it has a
        backing file, one of the same volume, with its format recorded.
        The backing file is given as a plain name.
        """
        file_info = self._check_file(path, volume_name)
        fmt = img_format or self._known_formats.get(path)
        if fmt is None and volume_name is not None:
            if not self._is_overlay_name(volume_name,
                                         os.path.basename(path)):
                raise lustre_client.LustreException(
                    reason=_('the format of %s is unknown; it is never '
                             'probed') % path)
            fmt = 'qcow2'
        try:
            info = image_utils.qemu_img_info(
                path, force_share=True, run_as_root=True,
                allow_qcow2_backing_file=True, img_format=fmt)
        except putils.ProcessExecutionError as exc:
            self._refuse(path, _('qemu-img cannot read it as %(fmt)s: '
                                 '%(err)s') %
                         {'fmt': fmt or 'an image',
                          'err': lustre_client.error_text(exc)})
        except exception.Invalid as exc:
            if type(exc) is not exception.Invalid:
                raise
            # Cinder's safety check failed; it does not say why.
            self._refuse(path, _unsafe_image_reason(self._file_header(path),
                                                    backing_allowed=True))
        if fmt == 'raw' and (info.format_specific or {}).get('type') == 'luks':
            # Cinder reads a raw file that holds a LUKS device as that
            # device, whose size leaves out the header; here a raw file is
            # its bytes, whatever they hold (an encrypted volume).
            info.virtual_size = file_info.st_size
        data = (info.format_specific or {}).get('data') or {}
        if data.get('data-file'):
            self._refuse(path, _("it has an external data file (%s); "
                                 "volume files keep their data inside") %
                         data['data-file'])
        if info.backing_file:
            backing = info.backing_file
            if os.path.dirname(backing) in ('', os.path.dirname(path)):
                backing = os.path.basename(backing)
            if volume_name is None:
                self._refuse(path, _('it has a backing file (%s)') %
                             info.backing_file)
            if not self._is_volume_file_name(volume_name, backing):
                self._refuse(path, _('its backing file %(backing)s is not '
                                     'a file of %(volume)s in the same '
                                     'directory') %
                             {'backing': info.backing_file,
                              'volume': volume_name})
            info.backing_file = backing
        info.image = os.path.basename(path)
        return info

    @staticmethod
    def _file_header(path):
        """The first bytes of a file, read as the service user if it can."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, 'rb') as image:
                return image.read(_HEADER_BYTES)
        except OSError:
            return None

    def _chain(self, volume, top=None, snap_info=None):
        """The checked backing chain of a volume, from ``top`` down.

        Each file is one of the volume's own (its base file or one of its
        overlays), in the format the driver recorded for it, and its
        backing file's format is recorded in it, so that nothing is probed
        when QEMU follows the chain.  An overlay need not be named in the
        ``.info`` file: once the hypervisor has merged the latest snapshot,
        the active overlay is nobody's snapshot, and the next snapshot puts
        it below the new active file.  A file appears once at most, and the
        chain is at most one file longer than the records account for.

        :param top: the name of the top file; by default the active file
        :returns: a list of :class:`ChainFile`, top first
        :raises LustreUnsafeFile: naming the file and what is wrong
        """
        volume_dir = self._local_volume_dir(volume)
        if snap_info is None:
            snap_info = self._snap_info(volume)
        # The base file, the overlays recorded, and one that is not.
        max_depth = len(set(snap_info.values()) | {volume.name}) + 1
        name = top or snap_info.get('active', volume.name)
        fmt = self._file_format(volume, name, snap_info)
        chain = []
        while name:
            path = os.path.join(volume_dir, name)
            own = self._own_file(name)
            if not own or own.name_id != volume.name_id:
                self._refuse(path, _('it is in the backing chain of volume '
                                     '%s but is none of its files') %
                             volume.id)
            if name in [link.name for link in chain]:
                self._refuse(path, _('it appears twice in the backing chain '
                                     'of volume %s') % volume.id)
            if len(chain) == max_depth:
                self._refuse(path, _('it is deeper in the backing chain of '
                                     'volume %(id)s than its snapshot '
                                     'records allow (%(n)d files)') %
                             {'id': volume.id, 'n': max_depth})
            info = self._qemu_img_info(path, volume.name, img_format=fmt)
            chain.append(ChainFile(name, path, fmt, info))
            name = info.backing_file
            if name:
                fmt = self._file_format(volume, name, snap_info)
                if info.backing_file_format != fmt:
                    self._refuse(path, _("its backing file %(name)s is "
                                         "recorded as '%(recorded)s', not "
                                         "as '%(fmt)s'") %
                                 {'name': name, 'fmt': fmt,
                                  'recorded': info.backing_file_format})
        return chain

    def _get_backing_chain_for_path(self, volume, path):
        """The base class's chain listing, from the checked chain."""
        return [{'filename': link.name,
                 'backing-filename': link.info.backing_file}
                for link in self._chain(volume, os.path.basename(path))]

    @contextlib.contextmanager
    def _formats_known(self, chain):
        """Tell :meth:`_qemu_img_info` the formats of a checked chain.

        The base class asks for the qemu-img info of chain files without a
        format; rather than letting it be probed, the format checked for
        the file is used while the calling operation holds the volume's
        lock.
        """
        paths = [link.path for link in chain]
        self._known_formats.update((link.path, link.fmt) for link in chain)
        try:
            yield
        finally:
            for path in paths:
                self._known_formats.pop(path, None)

    def _snap_info(self, volume):
        """A volume's checked snapshot records; empty without snapshots."""
        return self._read_info_file(self._local_path_volume_info(volume),
                                    empty_if_missing=True)

    def _read_info_file(self, info_path, empty_if_missing=False):
        """Read a volume's snapshot records, as data from the share.

        The file is opened without following a symbolic link and must be
        a small regular file; each name in it must be one of the volume's
        own file names, and each key ``active`` or a snapshot id.
        """
        try:
            fd = os.open(info_path,
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            if empty_if_missing:
                return {}
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._refuse(info_path, _('it is a symbolic link'))
            raise
        with os.fdopen(fd, 'rb') as info_file:
            info = os.fstat(info_file.fileno())
            if not stat.S_ISREG(info.st_mode):
                self._refuse(info_path, _('it is not a regular file'))
            if info.st_nlink != 1:
                self._refuse(info_path, _('it has %d hard links') %
                             info.st_nlink)
            text = info_file.read(_MAX_INFO_BYTES + 1)
        if len(text) > _MAX_INFO_BYTES:
            self._refuse(info_path, _('it is larger than %d bytes') %
                         _MAX_INFO_BYTES)
        try:
            snap_info = json.loads(text)
        except ValueError as exc:
            raise lustre_client.LustreException(
                reason=_('snapshot records %(path)s are not valid JSON '
                         '(%(err)s); the volume files are untouched, repair '
                         'or restore that file') %
                {'path': info_path, 'err': exc})
        self._check_snap_info(info_path, snap_info)
        return snap_info

    def _check_snap_info(self, info_path, snap_info):
        volume_name = os.path.basename(info_path)[:-len('.info')]
        if not isinstance(snap_info, dict):
            self._refuse(info_path, _('it does not hold a JSON object'))
        if snap_info and 'active' not in snap_info:
            self._refuse(info_path, _("it has no 'active' entry"))
        for key, name in snap_info.items():
            if key != 'active' and not re.fullmatch(_UUID_PATTERN, key):
                self._refuse(info_path, _('%r is not a snapshot id') % key)
            if not (isinstance(name, str) and
                    self._is_volume_file_name(volume_name, name)):
                self._refuse(info_path, _('entry %(key)s names %(name)r, '
                                          'which is not a file of '
                                          '%(volume)s') %
                             {'key': key, 'name': name,
                              'volume': volume_name})

    def _write_info_file(self, info_path, snap_info):
        """Replace the ``.info`` file atomically.

        A crash while writing must never leave a volume whose snapshot
        chain cannot be read, so the new content is written to a temporary
        file, flushed to disk and renamed over the old one.  Once the last
        snapshot is gone the file is removed: no file means no snapshots.

        The temporary file has a name others can predict: whatever is
        there is removed, and the file is created exclusively (never
        through a symbolic link) and written through a descriptor checked
        to be a regular file.  What the file holds is checked again each
        time it is read.
        """
        if 'active' not in snap_info:
            raise exception.RemoteFSException(
                _("'active' must be present when writing snap_info."))
        self._check_snap_info(info_path, snap_info)
        base_name = os.path.basename(info_path)[:-len('.info')]
        if snap_info == {'active': base_name}:
            self._delete(info_path)
            return
        tmp_path = info_path + '.tmp'
        self._delete(tmp_path)
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK
        if self._execute_as_root and os.geteuid() != 0:
            # The share directory may be writable by root only: root
            # creates the file and hands it to the service user.
            self._execute('dd', 'if=/dev/null', 'of=%s' % tmp_path,
                          'conv=excl', 'status=none', run_as_root=True)
            self._execute('chown', '-h',
                          '%d:%d' % (os.geteuid(), os.getegid()), tmp_path,
                          run_as_root=True)
            fd = os.open(tmp_path, flags)
        else:
            fd = os.open(tmp_path, flags | os.O_CREAT | os.O_EXCL, 0o660)
        with os.fdopen(fd, 'w') as tmp:
            info = os.fstat(tmp.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                self._refuse(tmp_path, _('it was replaced while the driver '
                                         'was writing it'))
            os.fchmod(tmp.fileno(), 0o660)
            json.dump(snap_info, tmp, indent=1, sort_keys=True)
            tmp.flush()
            os.fsync(tmp.fileno())
        # The share directory may be writable by root only.
        self._execute('mv', '-f', tmp_path, info_path,
                      run_as_root=self._execute_as_root)

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def create_volume(self, volume):
        """The base class's, under the volume's lock, which it omits."""
        return super().create_volume(volume)

    def _do_create_volume(self, volume):
        """Create the volume's file; on any failure, leave nothing behind.

        An encrypted volume gets a LUKS header once its file is complete
        (allocated, for a thick one); its encryption is checked first, so
        that one the hypervisor could not decrypt leaves no file.
        """
        fmt = self._new_volume_format(volume)
        path = self.local_path(volume)
        finish = None
        if volume.encryption_key_id:
            finish = functools.partial(self._write_luks_header, volume, path,
                                       self._encryption(volume))

        def fill():
            if fmt == 'qcow2':
                self._create_qcow2_file(path, volume.size)
            elif not self._is_thick(volume):
                self._create_sparsed_file(path, volume.size)
            return fmt

        self._record_format(volume, self._make_volume_file(
            volume, path, fill, finish=finish))

    def _populate_volume(self, volume, fill):
        """Make a volume's own file with ``fill()`` and record its format.

        :param fill: writes the volume's file and returns its format
        """
        self._record_format(volume, self._make_volume_file(
            volume, self.local_path(volume), fill))

    def _make_volume_file(self, volume, path, fill, layout=None,
                          finish=None):
        """Make a new file for a volume with ``fill()``, or leave no file.

        Every file a volume gets is made this way: the name must be free,
        the layout is set on the empty file, ``fill()`` writes it, a thick
        raw file is then allocated to its full size, and it is made
        readable by owner and group only.  On any failure the file is
        removed; a failed command is reported with what it said (``No
        space left on device``, say).

        :param fill: writes the file and returns its format
        :param layout: the file's layout; by default the volume's own
        :param finish: called last, when the file is complete
        :returns: the format of the file
        """
        if layout is None:
            layout = self._volume_layout(volume)
        if os.path.lexists(path):
            raise lustre_client.LustreException(
                reason=_('%s already exists; refusing to overwrite it') %
                path)
        try:
            self._set_layout(layout, path)
            fmt = fill()
            self._finish_volume_file(volume, path, fmt)
            if finish:
                finish()
        except putils.ProcessExecutionError as exc:
            self._delete_quietly(path)
            raise lustre_client.LustreException(
                reason=_('could not write the %(size)d GiB file %(path)s of '
                         'volume %(id)s: %(err)s') %
                {'size': volume.size, 'path': path, 'id': volume.id,
                 'err': lustre_client.error_text(exc)})
        except Exception:
            with excutils.save_and_reraise_exception():
                self._delete_quietly(path)
        return fmt

    def _finish_volume_file(self, volume, path, fmt):
        """Allocate a thick raw file in full, and close it to others.

        The last step of every new file (:meth:`_make_volume_file`) and of
        an image written into a volume.
        """
        if fmt == 'raw' and self._is_thick(volume):
            self._allocate(path, 0, volume.size * units.Gi)
        self._set_rw_permissions(path)

    def _create_sparsed_file(self, path, size):
        """The base class's, with the size in bytes as rootwrap admits."""
        self._execute('truncate', '-s', str(size * units.Gi), path,
                      run_as_root=self._execute_as_root)

    def _allocate(self, path, start, end):
        """Allocate bytes [start, end) of a raw file, keeping its data.

        fallocate(1) preallocates without writing on ldiskfs OSTs (Lustre
        2.14 and later); ZFS OSTs answer EOPNOTSUPP, and then the range is
        written with zeros, which takes time in proportion to its length.
        """
        share = os.path.dirname(path)
        if share not in self._fallocate_unsupported:
            try:
                self._execute('fallocate', '--offset', str(start),
                              '--length', str(end - start), path,
                              run_as_root=self._execute_as_root)
                return
            except putils.ProcessExecutionError as exc:
                error = lustre_client.error_text(exc)
                if 'Operation not supported' not in error:
                    raise
                self._fallocate_unsupported.add(share)
                LOG.warning('fallocate is not supported on %s; thick '
                            'volumes there are written with zeros.', share)
        self._execute('dd', 'if=/dev/zero', 'of=%s' % path, 'bs=1M',
                      'seek=%d' % (start // units.Mi),
                      'count=%d' % ((end - start) // units.Mi),
                      'conv=notrunc', run_as_root=self._execute_as_root)

    def _set_rw_permissions(self, path):
        """Make a volume file readable and writable by owner and group only.

        The RemoteFS base class opens files to everyone (666) unless
        nas_secure_file_permissions is true, for NFS servers that squash
        root.  Lustre volume files are never world-readable: QEMU gets
        access through libvirt's dynamic ownership, the volume service
        through root or its own ownership.
        """
        self._execute('chmod', '660', path, run_as_root=self._execute_as_root)

    def _delete_quietly(self, path):
        try:
            self._delete(path)
        except Exception:
            LOG.exception('Could not remove %s', path)

    # Encryption
    #
    # An encrypted volume holds a LUKS device, as the block device of any
    # other backend does: its raw file starts with a LUKS header, and the
    # hypervisor decrypts it (QEMU's native LUKS, which Nova's libvirt
    # driver uses for the "luks" provider).  Whatever sits below the guest
    # (snapshot overlays, clones, backups, images, migrated copies) is a
    # copy of ciphertext and needs no key.  Only a new volume's header and
    # an unencrypted image written into an encrypted volume need the key.
    #
    # The base class's encrypted files (qcow2 with its built-in LUKS) are
    # not used: Nova's libvirt driver runs "cryptsetup luksFormat" on an
    # attached encrypted file that cryptsetup does not see as LUKS, which a
    # qcow2 file is not, and snapshot overlays would each need the key.

    def _encryption(self, volume):
        """The checked encryption spec of a volume, with QEMU's cipher names.

        :raises VolumeDriverException: for a provider other than LUKS, or
                                       a cipher QEMU cannot name
        """
        ctxt = volume.obj_context or cinder_context.get_admin_context()
        try:
            encryption = volume_utils.check_encryption_provider(volume, ctxt)
            cipher = image_utils.decode_cipher(encryption['cipher'],
                                               encryption['key_size'])
        except (exception.VolumeDriverException,
                exception.InvalidVolumeType) as exc:
            # The cause without the prefix of its exception class, which
            # the error raised here would repeat.
            prefix = str(type(exc).message).split('%(')[0]
            cause = exc.msg
            if prefix and cause.startswith(prefix):
                cause = cause[len(prefix):]
            raise exception.VolumeDriverException(
                message=_('volume %(id)s cannot be encrypted on the Lustre '
                          'backend: %(err)s; its volume type needs the '
                          "'luks' provider and a cipher such as "
                          'aes-xts-plain64') % {'id': volume.id,
                                                'err': cause})
        return dict(encryption, **cipher)

    @contextlib.contextmanager
    def _passphrase_file(self, ctxt, key_id):
        """A private temporary file holding the passphrase of a key.

        The passphrase is the key in hexadecimal, as Nova and os-brick
        derive it from Cinder's symmetric keys.
        """
        key = key_manager.API(CONF).get(ctxt, key_id)
        with tempfile.NamedTemporaryFile(
                prefix='luks-', dir=volume_utils.image_conversion_dir()) as f:
            f.write(binascii.hexlify(key.get_encoded()))
            f.flush()
            yield f.name

    @staticmethod
    def _secret_object(key_file):
        return 'secret,id=luks0,format=raw,file=%s' % key_file

    def _write_luks_header(self, volume, path, encryption):
        """Make the complete raw file of a new volume a LUKS device.

        qemu-img makes the header (key slots included) of an empty LUKS
        device in a private temporary file, which is then written over the
        start of the volume's file.  LUKS1 records no payload length, so
        the device spans the whole file: the guest sees the volume's size
        less the header, as on an encrypted block device.  The rest of the
        file is left as it is, and decrypts to noise.
        """
        options = ('key-secret=luks0,cipher-alg=%(cipher_alg)s,'
                   'cipher-mode=%(cipher_mode)s,ivgen-alg=%(ivgen_alg)s' %
                   encryption)
        with self._passphrase_file(volume.obj_context,
                                   volume.encryption_key_id) as key_file:
            with image_utils.temporary_file(prefix='luks-header-') as header:
                # qemu-img times its key derivation on this CPU, and on a
                # busy host fails now and then ("Unable to get accurate CPU
                # usage"); the header file is simply made again.
                self._execute('qemu-img', 'create', '-f', 'luks',
                              '--object', self._secret_object(key_file),
                              '-o', options, header, '0', attempts=3)
                # -S 0: every byte written, no hole punched in a thick file.
                self._execute('qemu-img', 'convert', '-n', '-S', '0',
                              '-f', 'raw', '-O', 'raw', header, path,
                              run_as_root=self._execute_as_root)

    @staticmethod
    def _check_no_plaintext_copy(volume, source, what):
        """Refuse to copy an unencrypted source into an encrypted volume.

        Copies are of the bytes below the guest: the encrypted volume
        would hold plaintext.  The other way round is Cinder's own
        temporary copies for cinder-backup, which hold ciphertext whose
        key the backup keeps (Cinder's API refuses such copies to users).
        """
        if volume.encryption_key_id and not source.encryption_key_id:
            raise exception.VolumeDriverException(
                message=_('encrypted volume %(id)s cannot be made from '
                          'unencrypted %(what)s %(src)s') %
                {'id': volume.id, 'what': what, 'src': source.id})

    def _check_no_hypervisor_overlay(self, volume):
        """Refuse a snapshot of an attached encrypted or multiattach volume.

        For an encrypted volume the hypervisor would put the overlay above
        its decryption layer, and the guest's writes would reach the share
        in plaintext.  Guests sharing a multiattach volume cannot all move
        onto one new overlay: one would write on while the others wrote to
        the file below (Nova refuses assisted snapshots of such volumes).
        """
        if not self._is_volume_attached(volume):
            return
        if volume.encryption_key_id:
            raise exception.VolumeDriverException(
                message=_('volume %s is encrypted and attached: its '
                          'snapshots and clones are taken while it is '
                          'detached') % volume.id)
        if self._is_multiattach(volume):
            raise exception.VolumeDriverException(
                message=_('volume %s is a multiattach volume and attached: '
                          'its guests cannot share a snapshot overlay, so '
                          'it is cloned or backed up once detached from '
                          'every server') % volume.id)

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def delete_volume(self, volume):
        """Delete every file of a volume; deleting twice is harmless.

        The files are the ones the ``.info`` file names (snapshot overlays
        and the active file) and the base file, then the ``.info`` file
        last, so that a delete interrupted half way can simply run again.
        If the ``.info`` file is unreadable, the volume's files are found by
        name instead.

        A volume without a share recorded may still have a file: the
        service that was creating it died before the volume manager saved
        the share (in a cluster, another service then deletes it).  Its
        file is looked for in the pool its host names.
        """
        if not volume.provider_location:
            pool = volume_utils.extract_host(volume.host, level='pool')
            found = self._pool(pool) if pool else None
            if found is None:
                LOG.warning('Volume %s has no provider_location nor a pool '
                            'of this backend, so it has no file to delete.',
                            volume.id)
                return
            volume.provider_location = found.device
            volume.obj_reset_changes(['provider_location'])
        self._ensure_share_mounted(volume.provider_location)
        volume_dir = self._local_volume_dir(volume)
        info_path = self._local_path_volume_info(volume)
        info_name = os.path.basename(info_path)
        try:
            names = set(self._snap_info(volume).values())
        except lustre_client.LustreException as exc:
            LOG.warning('Deleting the files of volume %(id)s by name: '
                        '%(err)s', {'id': volume.id, 'err': exc})
            names = {name for name in os.listdir(volume_dir)
                     if self._is_overlay_name(volume.name, name)}
        # Temporary files of an interrupted snapshot revert, restore,
        # conversion to raw or .info update.
        names.update([name + '.tmp' for name in names] +
                     [volume.name, volume.name + '.restore',
                      info_name + '.tmp'])
        for name in sorted(names) + [info_name]:
            self._delete_volume_file(os.path.join(volume_dir, name))

    def _delete_volume_file(self, path):
        """Remove a file the driver names, if it is there.

        Only the name is removed (a symbolic link, never what it points
        to), and never a directory or device someone else put there.
        """
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
            self._delete(path)
        else:
            LOG.warning('Leaving %s: it is not a regular file, so not a '
                        'file of this driver.', path)

    # Attach

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def initialize_connection(self, volume, connector):
        """Describe the active file of a volume to a Lustre connector.

        The format comes from the volume's records, never from the file,
        and a file whose virtual size exceeds the volume is refused: a
        guest could have written a bigger qcow2 header into a raw volume.
        A volume about to be restored from a backup is made raw first,
        since cinder-backup writes raw bytes into the file it is given.

        It holds the volume's lock: it may grow or replace the active file,
        and the file it names must not be merged away by a snapshot delete
        that another service of the cluster runs meanwhile.
        """
        if volume.status == fields.VolumeStatus.RESTORING_BACKUP:
            self._prepare_restore(volume)
        active, path, fmt, info = self._chain(volume)[0]
        if volume.encryption_key_id and fmt != 'raw':
            raise exception.InvalidVolume(
                reason=_('encrypted volume %s has snapshots: its active '
                         'file is a qcow2 overlay, and a hypervisor decrypts '
                         'LUKS in a raw file only; delete its snapshots, or '
                         'attach a volume made from one') % volume.id)
        if self._is_multiattach(volume) and fmt != 'raw':
            raise exception.InvalidVolume(
                reason=_('multiattach volume %(id)s is %(fmt)s; guests can '
                         'only share raw files') % {'id': volume.id,
                                                    'fmt': fmt})
        virtual_size_gb = math.ceil(info.virtual_size / units.Gi)
        if virtual_size_gb > volume.size:
            LOG.error('The virtual size of %(path)s (%(vsize)s GiB) exceeds '
                      'the size of volume %(id)s (%(size)s GiB); refusing '
                      'to attach it.',
                      {'path': path, 'vsize': virtual_size_gb,
                       'id': volume.id, 'size': volume.size})
            raise exception.InvalidVolume(
                reason=_('the virtual size of the volume file exceeds the '
                         'volume size'))
        if info.virtual_size < volume.size * units.Gi:
            self._grow_to_volume_size(volume, path, fmt, info.virtual_size)
        device = volume.provider_location
        options = self._mount_options + self._share_options(device)
        data = {'export': device,
                'name': active,
                'format': fmt,
                'device_path': path}
        if options:
            data['options'] = '-o %s' % ','.join(options)
        return {'driver_volume_type': self.driver_volume_type,
                'data': data,
                'mount_point_base': self._get_mount_point_base()}

    def terminate_connection(self, volume, connector, **kwargs):
        """Give a restored raw volume back its full size.

        cinder-backup truncates the file it restores into and skips chunks
        of zeros, so the file may end at its last non-zero byte.
        """
        if volume.status == fields.VolumeStatus.RESTORING_BACKUP:
            self._finish_restore(volume)

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def _finish_restore(self, volume):
        if (self._volume_format(volume) == 'raw' and
                not self._snapshots_exist(volume)):
            path = self.local_path(volume)
            size = self._check_file(path, volume.name).st_size
            self._restore_raw_size(volume, path, size)

    def _grow_to_volume_size(self, volume, path, fmt, size):
        """Grow an active file found smaller than its volume.

        A raw file was truncated by a restore, or not yet grown by the
        hypervisor after an extend while attached; a qcow2 file only the
        latter.  A qcow2 file is resized only when no guest has it open.
        """
        if fmt == 'raw':
            self._restore_raw_size(volume, path, size)
        elif not self._is_volume_attached(volume):
            LOG.warning('%(path)s is %(size)d bytes, smaller than volume '
                        '%(id)s (an extend the hypervisor did not finish); '
                        'growing it to %(gb)d GiB.',
                        {'path': path, 'size': size, 'id': volume.id,
                         'gb': volume.size})
            image_utils.resize_image(path, volume.size,
                                     run_as_root=self._execute_as_root,
                                     file_format=fmt)

    def _restore_raw_size(self, volume, path, size):
        """Extend a raw file found shorter than its volume with zeros.

        What a guest never wrote reads as zeros, so this only gives back
        the end of the disk that a truncating writer took away, or that an
        extend while attached did not add.
        """
        if size < volume.size * units.Gi:
            LOG.warning('%(path)s is %(size)d bytes, shorter than volume '
                        '%(id)s; extending it to %(gb)d GiB.',
                        {'path': path, 'size': size, 'id': volume.id,
                         'gb': volume.size})
            self._execute('truncate', '-s', str(volume.size * units.Gi),
                          path, run_as_root=self._execute_as_root)

    def _prepare_restore(self, volume):
        """Make a volume raw before cinder-backup writes into it.

        The restore replaces the whole content, so a qcow2 volume simply
        gets a new, empty raw file.  A volume with snapshots cannot: its
        active file is an overlay the snapshots depend on.
        """
        if self._snapshots_exist(volume):
            raise exception.InvalidVolume(
                reason=_('volume %s has snapshots; restore the backup into '
                         'a new volume, or delete the snapshots first') %
                volume.id)
        if self._volume_format(volume) == 'raw':
            return
        LOG.info('Volume %s is restored from a backup: it becomes a raw '
                 'volume.', volume.id)
        path = self.local_path(volume)
        new_path = path + '.restore'
        self._delete(new_path)

        def fill():
            self._create_sparsed_file(new_path, volume.size)
            return 'raw'

        self._make_volume_file(volume, new_path, fill)
        self._replace_volume_file(volume, new_path, path, 'raw')

    # Backup

    def backup_use_temp_snapshot(self):
        """Never hand cinder-backup a snapshot to read.

        A snapshot here is a point in a qcow2 chain, which cinder-backup
        cannot read as a raw disk: whatever backup_use_temp_snapshot says,
        backups go through a raw temporary volume.
        """
        return False

    def get_backup_device(self, context, backup):
        """Prepare what cinder-backup reads, or fail the backup clearly.

        The volume manager calls this without a caller waiting for the
        answer (cinder-backup casts the request), and nothing in Cinder
        handles its failure: the backup would stay ``creating`` and its
        volume or snapshot ``backing-up`` for ever.  A backup of an
        attached volume fails here whenever Nova cannot snapshot it.  The
        backup is put in ``error`` with the reason, and its volume or
        snapshot back to the status it had.
        """
        try:
            return super().get_backup_device(context, backup)
        except Exception as exc:
            with excutils.save_and_reraise_exception():
                self._fail_backup(context, backup, exc)

    @staticmethod
    def _fail_backup(context, backup, exc):
        LOG.error('Backup %(backup)s of volume %(vol)s failed: %(err)s',
                  {'backup': backup.id, 'vol': backup.volume_id,
                   'err': exc})
        try:
            if backup.snapshot_id:
                snapshot = objects.Snapshot.get_by_id(context,
                                                      backup.snapshot_id)
                if snapshot.status == fields.SnapshotStatus.BACKING_UP:
                    snapshot.status = fields.SnapshotStatus.AVAILABLE
                    snapshot.save()
            else:
                volume = objects.Volume.get_by_id(context, backup.volume_id)
                if volume.status == fields.VolumeStatus.BACKING_UP:
                    volume.status = volume.previous_status
                    volume.previous_status = 'error_backing-up'
                    volume.save()
            volume_utils.update_backup_error(
                backup, _('could not read volume %(vol)s: %(err)s') %
                {'vol': backup.volume_id, 'err': exc})
        except Exception:
            LOG.exception('Could not record the failure of backup %s.',
                          backup.id)

    def _get_backup_volume_temp_volume(self, context, backup):
        """Give cinder-backup what the guest sees, byte for byte.

        cinder-backup reads the file the connection names as a raw disk.
        The base class copies snapshots and attached volumes into temporary
        volumes (raw here, see :meth:`_create_temp_volume`); the active
        file of a qcow2 volume, or of any volume with snapshots, is a qcow2
        file too, so such a volume is also copied.
        """
        volume = objects.Volume.get_by_id(context, backup.volume_id)
        if (backup.snapshot_id or volume.previous_status == 'in-use' or
                self._volume_format(volume) == 'raw'):
            return super()._get_backup_volume_temp_volume(context, backup)
        temp = self._create_temp_cloned_volume(
            context, volume, status=fields.VolumeStatus.BACKING_UP)
        backup.temp_volume_id = temp.id
        backup.save()
        return temp

    def _create_temp_volume(self, context, volume, volume_options=None):
        """A temporary volume for cinder-backup, which reads raw disks."""
        options = {'admin_metadata': {'format': 'raw'}}
        options.update(volume_options or {})
        return super()._create_temp_volume(context, volume,
                                           volume_options=options)

    def _share_options(self, device):
        share = self._lustre_shares.get(device)
        return list(share.options) if share else []

    # Extend

    def _extend_volume(self, volume, size_gb):
        """Grow the active file of a volume.

        A thick raw volume gets its new space preallocated; if that fails
        the file is shrunk back, so the volume keeps its size and data.

        The file of an attached volume is left to the hypervisor: QEMU has
        it open (and locked), and caches a qcow2 file's metadata, so only
        QEMU may resize it.  The volume manager then tells Nova, whose
        Lustre volume driver has libvirt grow the disk (block resize).
        Should that never happen, the next attach grows the file instead
        (:meth:`initialize_connection`).
        """
        _name, path, fmt, info = self._chain(volume)[0]
        old_size = info.virtual_size
        new_size = size_gb * units.Gi
        if new_size < old_size:
            raise exception.ExtendVolumeError(
                reason=_('volume %(id)s is %(old)d bytes; it cannot shrink '
                         'to %(new)d GiB') %
                {'id': volume.id, 'old': old_size, 'new': size_gb})
        if new_size == old_size:
            return
        if self._is_volume_attached(volume):
            LOG.info('Volume %(id)s is attached: the hypervisor grows its '
                     'file %(path)s to %(size)d GiB.',
                     {'id': volume.id, 'path': path, 'size': size_gb})
            return
        LOG.info('Extending volume %(id)s to %(size)d GiB.',
                 {'id': volume.id, 'size': size_gb})
        image_utils.resize_image(path, size_gb,
                                 run_as_root=self._execute_as_root,
                                 file_format=fmt)
        if fmt == 'raw' and self._is_thick(volume):
            try:
                self._allocate(path, old_size, new_size)
            except putils.ProcessExecutionError as exc:
                self._execute('truncate', '-s', str(old_size), path,
                              run_as_root=self._execute_as_root)
                raise exception.ExtendVolumeError(
                    reason=_('could not allocate %(size)d GiB for volume '
                             '%(id)s: %(err)s') %
                    {'size': size_gb, 'id': volume.id,
                     'err': lustre_client.error_text(exc)})
        virtual_size = self._qemu_img_info(path, volume.name,
                                           img_format=fmt).virtual_size
        if virtual_size != new_size:
            raise exception.ExtendVolumeError(
                reason=_('%(path)s is %(vsize)d bytes after resizing to '
                         '%(size)d GiB') %
                {'path': path, 'vsize': virtual_size, 'size': size_gb})

    # Snapshots

    @coordination.synchronized('{self.driver_prefix}-{snapshot.volume.id}')
    def create_snapshot(self, snapshot):
        """Snapshot a volume, unless snapshots are disabled or unsafe.

        A multiattach volume gets none: its active file would become a
        qcow2 overlay, which two guests cannot share.
        """
        if not self.configuration.lustre_snapshot_support:
            raise exception.VolumeDriverException(
                message=_('snapshots are disabled on this backend '
                          '(lustre_snapshot_support=false)'))
        if self._is_multiattach(snapshot.volume):
            raise exception.VolumeDriverException(
                message=_('volume %s is a multiattach volume; its active '
                          'file must stay raw, so it cannot have '
                          'snapshots') % snapshot.volume.id)
        self._check_no_hypervisor_overlay(snapshot.volume)
        self._record_base_format(snapshot.volume)
        return self._create_snapshot(snapshot)

    def _record_base_format(self, volume):
        """Record the format of the base file before the first snapshot.

        The base class records it only while none is recorded, so a stale
        record could outlive a change of format; and it records the
        overlay's format before the ``.info`` file, which this record
        outlives when the snapshot is cut short (see :meth:`_file_format`).
        """
        # The base class rewrites the records: they must all be loaded.
        records = self._records(volume)
        if self._snapshots_exist(volume):
            return
        fmt = records.get('format', 'raw')
        if records.get('base_format') != fmt:
            with volume.obj_as_admin():
                records['base_format'] = fmt
                volume.save()

    def _do_create_snapshot(self, snapshot, backing_filename, new_snap_path):
        """Create a qcow2 overlay on the active file of a volume.

        The base class probes the format of the backing file; a raw volume
        whose guest wrote a qcow2 header would then be read as qcow2.  Here
        the format comes from the volume's records.  A failed create leaves
        no overlay behind.
        """
        volume = snapshot.volume
        # The chain below the new overlay is what the guest will read.
        _name, backing_path, backing_fmt, _info = self._chain(
            volume, top=backing_filename)[0]
        layout = self._volume_layout(volume)
        try:
            self._set_layout(layout, new_snap_path)
            self._execute('qemu-img', 'create', '-f', 'qcow2',
                          '-b', backing_filename, '-F', backing_fmt,
                          new_snap_path, str(volume.size * units.Gi),
                          run_as_root=self._execute_as_root)
            self._set_rw_permissions(new_snap_path)
            if self.secure_file_operations_enabled():
                self._give_owner_of(backing_path, new_snap_path)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._delete_quietly(new_snap_path)

    def _give_owner_of(self, reference, path):
        """In secure mode, give a new overlay the owner of its backing file.

        The base class always runs ``chown --reference``.  As the service
        user that fails whenever the backing file is another user's: while
        a guest uses a volume, libvirt has given its files to QEMU's user,
        and a Nova-assisted snapshot would fail.  The overlay then stays
        the service user's, mode 660, and libvirt gives it to QEMU when the
        guest moves onto it.
        """
        owner = os.lstat(reference).st_uid
        if not self._execute_as_root and owner != os.geteuid():
            LOG.debug('%(path)s stays the service user\'s: its backing file '
                      '%(ref)s belongs to uid %(uid)d (a hypervisor\'s, '
                      'while a guest uses it).',
                      {'path': path, 'ref': reference, 'uid': owner})
            return
        self._execute('chown', '--reference=%s' % reference, path,
                      run_as_root=self._execute_as_root)

    def _create_snapshot_online(self, snapshot, backing_filename,
                                new_snap_path):
        """Ask Nova to move the guest onto a new overlay; undo a refusal.

        The base class makes the overlay, asks Nova to switch the guest to
        it and waits for Nova's answer; when Nova refuses (the API call
        fails, or Nova reports ``error``: the guest never left its file)
        it leaves the overlay on the share for ever, since the snapshot is
        never recorded.  Here that overlay is removed.  When Nova does not
        answer in time, or the snapshot is deleted meanwhile, Nova may
        still move the guest onto the overlay: it is kept, and deleting
        the snapshot once the volume is detached removes it.
        """
        try:
            super()._create_snapshot_online(snapshot, backing_filename,
                                            new_snap_path)
        except Exception as exc:
            volume = snapshot.volume
            refused = (not isinstance(exc, exception.RemoteFSException) or
                       self._snapshot_status(snapshot) ==
                       fields.SnapshotStatus.ERROR)
            if refused:
                self._delete_quietly(new_snap_path)
                outcome = _('the volume is unchanged')
            else:
                LOG.error('Nova did not finish snapshot %(snap)s of volume '
                          '%(vol)s; keeping %(path)s, which its guest may '
                          'be using.', {'snap': snapshot.id,
                                        'vol': volume.id,
                                        'path': new_snap_path})
                outcome = _('Nova may still move the guest onto %s; delete '
                            'the snapshot once the volume is detached to '
                            'remove that file') % new_snap_path
            raise exception.RemoteFSException(
                _('Nova could not snapshot attached volume %(vol)s '
                  '(snapshot %(snap)s): %(err)s; %(outcome)s.  Check '
                  'nova-compute on the host of the server, and that '
                  "cinder.conf's [nova] section names a service user "
                  'Nova allows to create volume snapshots.') %
                {'vol': volume.id, 'snap': snapshot.id, 'err': exc,
                 'outcome': outcome}) from exc

    @staticmethod
    def _snapshot_status(snapshot):
        """A snapshot's status as Nova last set it, None if unknown."""
        try:
            return objects.Snapshot.get_by_id(
                snapshot.obj_context.elevated(), snapshot.id).status
        except Exception:
            LOG.exception('Could not read the status of snapshot %s.',
                          snapshot.id)
            return None

    def _delete_snapshot_online(self, context, snapshot, info):
        """Ask Nova to merge a snapshot away; a refusal changes nothing.

        Before it asks Nova, the base class records the format of the
        active file as the base file's when the oldest snapshot goes; when
        Nova then fails, the ``.info`` file still lists the snapshot over
        the unchanged base file, whose format the records would misstate,
        so that the volume could no longer be attached.  The record is
        restored here.
        """
        volume = snapshot.volume
        base_format = self._records(volume).get('base_format')
        try:
            return super()._delete_snapshot_online(context, snapshot, info)
        except Exception as exc:
            if snapshot.id not in self._snap_info(volume):
                # Nova merged the snapshot: what failed came after.
                raise
            records = self._records(volume)
            if records.get('base_format') != base_format:
                with volume.obj_as_admin():
                    records['base_format'] = base_format
                    volume.save()
            raise exception.RemoteFSException(
                _('Nova could not delete snapshot %(snap)s of attached '
                  'volume %(vol)s: %(err)s; the volume and its snapshots '
                  'are unchanged.  Retry the delete, or detach the volume '
                  'first.  Check nova-compute on the host of the server, '
                  "and that cinder.conf's [nova] section names a service "
                  'user Nova allows to delete volume snapshots.') %
                {'snap': snapshot.id, 'vol': volume.id, 'err': exc}) from exc

    def _delete_snapshot(self, snapshot):
        """Delete a snapshot, including one that failed half way.

        A snapshot whose creation failed before it was recorded in the
        ``.info`` file may have left its overlay, and the new ``.info``
        file it was writing; they are removed, the overlay unless the
        volume is attached (a guest may already be writing to it).
        """
        volume = snapshot.volume
        snap_info = self._snap_info(volume)
        if snapshot.id in snap_info:
            # The base class rewrites the format records.
            self._load_admin_metadata(volume)
            chain = self._chain(volume, snap_info=snap_info)
            with self._formats_known(chain), self._ciphertext_chain(snapshot):
                return super()._delete_snapshot(snapshot)
        # The volume's lock is held: nobody is writing it.
        self._delete_volume_file(self._local_path_volume_info(volume) +
                                 '.tmp')
        overlay = self._get_new_snap_path(snapshot)
        if self._is_volume_attached(volume):
            if os.path.lexists(overlay):
                LOG.warning('Snapshot %(snap)s is not recorded but %(path)s '
                            'exists; keeping it, volume %(vol)s is attached.',
                            {'snap': snapshot.id, 'path': overlay,
                             'vol': volume.id})
            return
        self._delete_volume_file(overlay)

    @staticmethod
    @contextlib.contextmanager
    def _ciphertext_chain(snapshot):
        """Have the base class merge the overlays of an encrypted volume.

        The base class takes the overlays of an encrypted volume for qcow2
        files with built-in encryption, which those here are not: they
        hold ciphertext, which is merged as any data is, with no key.  The
        key is hidden from it meanwhile, and never saved.
        """
        key_id = snapshot.encryption_key_id
        if not key_id:
            yield
            return
        snapshot.encryption_key_id = None
        try:
            yield
        finally:
            snapshot.encryption_key_id = key_id
            snapshot.obj_reset_changes(['encryption_key_id'])

    def _revert_to_snapshot(self, context, volume, snapshot):
        """Revert a detached volume to its latest snapshot.

        RevertToSnapshotMixin deletes the overlay above the snapshot before
        it makes the empty one that replaces it, and Cinder's generic revert
        copies raw data into that qcow2 overlay; here the new overlay is
        made beside it and renamed over it, so a failure leaves the volume
        as it was.
        """
        self._validate_state(volume.status, ('available', 'reverting'))
        snap_info = self._read_info_file(
            self._local_path_volume_info(volume))
        if snap_info.get(snapshot.id) != snap_info['active']:
            raise exception.InvalidSnapshot(
                reason=_('snapshot %(snap)s is not the latest snapshot of '
                         'volume %(vol)s; only the latest can be reverted '
                         'to') % {'snap': snapshot.id, 'vol': volume.id})
        _name, overlay, _fmt, info = self._chain(volume,
                                                 snap_info=snap_info)[0]
        backing_file = info.backing_file
        new_overlay = overlay + '.tmp'
        self._delete(new_overlay)
        self._do_create_snapshot(snapshot, backing_file, new_overlay)
        self._execute('mv', '-f', new_overlay, overlay,
                      run_as_root=self._execute_as_root)

    # Volumes from snapshots, clones, images

    @coordination.synchronized('{self.driver_prefix}-{snapshot.volume_id}')
    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def create_volume_from_snapshot(self, volume, snapshot):
        """Copy a snapshot, holding its volume's lock as a clone does.

        The base class locks the new volume only; a snapshot of the same
        volume deleted meanwhile would commit and remove a file of the
        chain being copied.
        """
        return self._create_volume_from_snapshot(volume, snapshot)

    def _create_volume_from_snapshot(self, volume, snapshot):
        """Copy a snapshot into a new file, which a failed copy removes.

        The base class copies over an empty volume and leaves it behind
        when the copy fails.
        """
        self._validate_state(snapshot.status,
                             ('available', 'backing-up', 'restoring'),
                             obj_description='snapshot',
                             invalid_exc=exception.InvalidSnapshot)
        self._check_no_plaintext_copy(volume, snapshot.volume, 'snapshot')
        self._ensure_shares_mounted()
        volume.provider_location = self._find_share(volume)
        self._populate_volume(volume, lambda: self._copy_volume_from_snapshot(
            snapshot, volume, volume.size))
        return {'provider_location': volume.provider_location}

    def _copy_volume_from_snapshot(self, snapshot, volume, volume_size,
                                   src_encryption_key_id=None,
                                   new_encryption_key_id=None):
        """Write a snapshot's point in time into a new volume's file.

        The snapshot's data is the chain below the overlay recorded for it;
        ``qemu-img convert`` reads that chain and writes only the allocated
        data (Lustre has no reflink), in the new volume's format.  An
        encrypted snapshot is copied as ciphertext, so the new volume opens
        with the key of the snapshot, which Cinder gives it.

        :returns: the format of the new file
        """
        src_volume = snapshot.volume
        snap_info = self._read_info_file(
            self._local_path_volume_info(src_volume))
        if snapshot.id not in snap_info:
            raise exception.InvalidSnapshot(
                reason=_('snapshot %s has no record in its volume\'s .info '
                         'file') % snapshot.id)
        chain = self._chain(src_volume, top=snap_info[snapshot.id],
                            snap_info=snap_info)
        if len(chain) < 2:
            self._refuse(chain[0].path, _('the overlay of snapshot %s has no '
                                          'backing file') % snapshot.id)
        return self._copy_chain(chain[1:], volume, volume_size)

    def _copy_chain(self, chain, volume, volume_size):
        """Write what a checked chain holds to a new volume's file.

        ``qemu-img convert`` reads the top file of the chain and its
        backing files and writes only the allocated data, in the new
        volume's format.

        :param chain: a source volume's chain, as :meth:`_chain` returns
        :returns: the format of the new file
        """
        _name, source, source_fmt, source_info = chain[0]
        dest = self._local_path_volume(volume)
        out_fmt = self._new_volume_format(volume)
        LOG.debug('Copying %(src)s to %(dest)s as %(fmt)s.',
                  {'src': source, 'dest': dest, 'fmt': out_fmt})
        image_utils.convert_image(source, dest, out_fmt,
                                  src_format=source_fmt,
                                  run_as_root=self._execute_as_root,
                                  data=source_info)
        if volume_size * units.Gi > source_info.virtual_size:
            image_utils.resize_image(dest, volume_size,
                                     run_as_root=self._execute_as_root,
                                     file_format=out_fmt)
        return out_fmt

    def _create_cloned_volume(self, volume, src_vref, context):
        """Copy a volume; an attached one through a temporary snapshot.

        Nothing writes to a detached volume, and the lock the caller holds
        on it keeps its snapshots from being taken or deleted meanwhile,
        so its active file and chain are copied as they are.  A guest
        writes to an attached volume: a snapshot (taken through Nova, as
        for any attached volume) freezes it at one point in time first.
        The clone may land in another pool than its source.
        """
        self._validate_state(src_vref.status,
                             ('available', 'in-use', 'backing-up',
                              'downloading'),
                             obj_description='source volume')
        self._check_no_plaintext_copy(volume, src_vref, 'volume')
        self._ensure_shares_mounted()
        volume.provider_location = self._find_share(volume)
        if not self._is_volume_attached(src_vref):
            self._populate_volume(volume, lambda: self._copy_chain(
                self._chain(src_vref), volume, volume.size))
            return {'provider_location': volume.provider_location}
        temp_snapshot = objects.Snapshot(
            context=context,
            volume_id=src_vref.id,
            user_id=context.user_id,
            project_id=context.project_id,
            status=fields.SnapshotStatus.CREATING,
            progress='0%',
            volume_size=src_vref.size,
            display_name='tmp-snap-%s' % volume.id,
            display_description=None,
            volume_type_id=src_vref.volume_type_id,
            encryption_key_id=src_vref.encryption_key_id)
        self._check_no_hypervisor_overlay(src_vref)
        temp_snapshot.create()
        created = False
        try:
            self._create_snapshot(temp_snapshot)
            created = True
            self._populate_volume(
                volume, lambda: self._copy_volume_from_snapshot(
                    temp_snapshot, volume, volume.size))
        finally:
            self._remove_temp_snapshot(temp_snapshot, context, created)
        return {'provider_location': volume.provider_location}

    def _remove_temp_snapshot(self, snapshot, context, created):
        try:
            if created:
                # Nova reports the end of an assisted create and of an
                # assisted delete alike, with progress 90%, which the
                # create left here: the base class would take the delete
                # for done at once and remove the file QEMU still merges
                # into the overlay.
                snapshot.status = fields.SnapshotStatus.DELETING
                snapshot.progress = '100%'
                snapshot.context = context.elevated()
                snapshot.save()
                self._delete_snapshot(snapshot)
            snapshot.destroy()
        except Exception:
            # Keep the record, so that the overlay left in the chain can
            # still be deleted through the API.
            LOG.exception('Could not delete temporary snapshot %s.',
                          snapshot.id)
            snapshot.status = fields.SnapshotStatus.ERROR_DELETING
            snapshot.save()

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        """Write an image into a new volume, in the volume's format.

        The image is checked (no backing file, no data file, virtual size
        within the volume) and converted by Cinder's image utilities.
        """
        path = self.local_path(volume)
        self._check_file(path, volume.name)
        fmt = self._volume_format(volume)
        self._fetch_image(context, volume, image_service, image_id, path,
                          fmt, disable_sparse)
        image_utils.resize_image(path, volume.size,
                                 run_as_root=self._execute_as_root,
                                 file_format=fmt)
        virtual_size = self._qemu_img_info(path, volume.name,
                                           img_format=fmt).virtual_size
        if virtual_size != volume.size * units.Gi:
            raise exception.ImageUnacceptable(
                image_id=image_id,
                reason=_('volume file is %(vsize)d bytes, expected '
                         '%(size)d GiB') % {'vsize': virtual_size,
                                            'size': volume.size})
        self._finish_volume_file(volume, path, fmt)

    def _fetch_image(self, context, volume, image_service, image_id, path,
                     fmt, disable_sparse):
        """Write an image into a file in a format, or refuse it clearly."""
        try:
            image_utils.fetch_to_volume_format(
                context, image_service, image_id, path, fmt,
                self.configuration.volume_dd_blocksize, size=volume.size,
                run_as_root=self._execute_as_root,
                disable_sparse=disable_sparse)
        except exception.Invalid as exc:
            if type(exc) is not exception.Invalid:
                raise
            # Cinder's safety check failed; it does not say why.
            reason = _unsafe_image_reason(
                self._image_header(context, image_service, image_id),
                backing_allowed=False)
            LOG.error('Refusing image %(image)s: %(reason)s',
                      {'image': image_id, 'reason': reason})
            raise exception.ImageUnacceptable(image_id=image_id,
                                              reason=reason)

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def copy_image_to_encrypted_volume(self, context, volume, image_service,
                                       image_id, disable_sparse=False):
        """Write an unencrypted image into a new encrypted volume.

        The base class attaches the volume on this host and writes through
        a dm-crypt device.  Here qemu-img encrypts as it writes, with the
        LUKS device of the volume's file as its target, as QEMU decrypts
        for a guest.  The image must fit in the device (the volume less
        the LUKS header).
        """
        path = self.local_path(volume)
        self._check_file(path, volume.name)
        if self._volume_format(volume) != 'raw':
            raise exception.InvalidVolume(
                reason=_('encrypted volume %s is not a raw file') % volume.id)
        with image_utils.temporary_file(
                prefix='%s.image.%s' % (volume.id, image_id)) as tmp_path:
            self._fetch_image(context, volume, image_service, image_id,
                              tmp_path, 'raw', disable_sparse)
            image_size = image_utils.qemu_img_info(
                tmp_path, img_format='raw').virtual_size
            device_size = image_utils.qemu_img_info(
                path, img_format='luks', force_share=True,
                run_as_root=True).virtual_size
            if image_size > device_size:
                raise exception.ImageUnacceptable(
                    image_id=image_id,
                    reason=_('the image is %(image)d bytes; encrypted volume '
                             '%(id)s holds %(device)d bytes (its size less '
                             'the LUKS header)') %
                    {'image': image_size, 'id': volume.id,
                     'device': device_size})
            with self._passphrase_file(context,
                                       volume.encryption_key_id) as key_file:
                target = ('driver=luks,key-secret=luks0,file.driver=file,'
                          'file.filename=%s' % path.replace(',', ',,'))
                self._execute('qemu-img', 'convert', '-n',
                              '--object', self._secret_object(key_file),
                              '-f', 'raw', tmp_path,
                              '--target-image-opts', target,
                              run_as_root=self._execute_as_root)

    @staticmethod
    def _image_header(context, image_service, image_id):
        """The first bytes of an image, or None if it cannot be read."""
        try:
            chunks = image_service.download(context, image_id)
            header = b''
            for chunk in chunks:
                header += chunk
                if len(header) >= _HEADER_BYTES:
                    break
            if hasattr(chunks, 'close'):
                chunks.close()
            return header
        except Exception:
            LOG.debug('Cannot read the header of image %s.', image_id,
                      exc_info=True)
            return None

    def _copy_volume_to_image(self, context, volume, image_service,
                              image_meta, store_id=None):
        """Upload what the guest sees, in the image's disk format.

        The active file is converted with its recorded format (never a
        probed one); a raw file already in the image's format is uploaded
        as it is.
        """
        _name, path, fmt, info = self._chain(volume)[0]
        if fmt == 'raw':
            self._restore_raw_size(volume, path, info.virtual_size)
        disk_format = image_meta['disk_format']
        image_utils.check_image_conversion_disable(
            disk_format, fmt, image_meta['id'], upload=True)
        if fmt == disk_format and not info.backing_file:
            volume_utils.upload_volume(context, image_service, image_meta,
                                       path, volume, volume_format=fmt,
                                       run_as_root=self._execute_as_root)
            return
        prefix = '%s.temp_image.%s' % (volume.id, image_meta['id'])
        with image_utils.temporary_file(prefix=prefix,
                                        suffix='.img') as tmp_path:
            image_utils.convert_image(
                path, tmp_path, image_utils.fixup_disk_format(disk_format),
                src_format=fmt, run_as_root=self._execute_as_root,
                data=info)
            volume_utils.upload_volume(context, image_service, image_meta,
                                       tmp_path, volume,
                                       volume_format=disk_format,
                                       run_as_root=self._execute_as_root)

    # Migration

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    @coordination.synchronized('{self.driver_prefix}-{new_volume.id}')
    def update_migrated_volume(self, ctxt, volume, new_volume,
                               original_volume_status):
        """Give the migrated file the name of the original volume.

        This is done only when the migrated volume is detached and on
        another share than the original (whose file still exists until it
        is deleted); otherwise the new file keeps its name, through
        ``_name_id``.
        """
        name_id = new_volume._name_id or new_volume.id
        if (original_volume_status == 'available' and
                volume.provider_location != new_volume.provider_location and
                not self._snapshots_exist(new_volume)):
            current_path = self.local_path(new_volume)
            wanted_path = os.path.join(os.path.dirname(current_path),
                                       volume.name)
            if os.path.lexists(wanted_path):
                LOG.warning('%s exists; the migrated volume keeps its file '
                            'name.', wanted_path)
            else:
                try:
                    self._execute('mv', current_path, wanted_path,
                                  run_as_root=self._execute_as_root)
                    name_id = None
                except putils.ProcessExecutionError:
                    LOG.exception('Could not rename %s; the migrated volume '
                                  'keeps its file name.', current_path)
        return {'_name_id': name_id,
                'provider_location': new_volume.provider_location}

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def migrate_volume(self, ctxt, volume, host):
        """Move a detached volume's file to another Lustre share.

        The destination pool of any Lustre backend names its share in
        ``location_info``; this host mounts it and copies the file there
        with qemu-img, which keeps holes and the format, instead of
        Cinder's generic migration (attach both volumes and copy every
        byte, zeros included).  A volume with snapshots, or attached, takes
        the generic path.

        :returns: (moved, model update)
        """
        location = host.get('capabilities', {}).get('location_info') or ''
        driver, _sep, device = location.partition(':')
        if (driver != 'LustreDriver' or not device or
                volume.status != 'available' or
                self._is_volume_attached(volume) or
                self._snapshots_exist(volume)):
            return False, None
        if device == volume.provider_location:
            return True, None
        try:
            lustre_client.Share.parse(device)
            self._ensure_share_mounted(device)
        except (ValueError, exception.VolumeDriverException) as exc:
            LOG.warning('Cannot reach %(share)s to migrate volume %(id)s '
                        'there; using generic migration: %(err)s',
                        {'share': device, 'id': volume.id, 'err': exc})
            return False, None
        dest = os.path.join(self._get_mount_point_for_share(device),
                            volume.name)
        if os.path.lexists(dest):
            LOG.warning('%s exists; using generic migration.', dest)
            return False, None
        _name, source, fmt, info = self._chain(volume)[0]
        # The destination pool publishes its backend's own defaults.
        try:
            defaults = lustre_client.LayoutDefaults.parse(
                host['capabilities'].get('lustre_layout'))
        except ValueError as exc:
            LOG.warning('Cannot read the layout of %(share)s (%(err)s); '
                        'using generic migration.',
                        {'share': device, 'err': exc})
            return False, None
        layout = self._layout(self._volume_specs(volume),
                              host['capabilities'].get('ost_pool'),
                              defaults)
        LOG.info('Migrating volume %(id)s from %(src)s to %(dest)s.',
                 {'id': volume.id, 'src': volume.provider_location,
                  'dest': device})

        def fill():
            image_utils.convert_image(source, dest, fmt, src_format=fmt,
                                      run_as_root=self._execute_as_root,
                                      data=info)
            return fmt

        self._make_volume_file(volume, dest, fill, layout=layout)
        self._delete(source)
        return True, {'provider_location': device}

    # Keys of extra specs that only steer the scheduler.
    _SCHEDULING_SPECS = ('volume_backend_name', 'ost_pool')

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def retype(self, ctxt, volume, new_type, diff, host):
        """Restripe or convert a detached volume in place for its new type.

        When the types differ only in Lustre layout specs (or, in OST-pool
        mode, in OST pool), every file of the volume gets the new layout
        with ``lfs migrate``: the data moves between OSTs inside Lustre,
        and the volume keeps its id and file.  A qcow2 volume retyped to a
        multiattach type becomes a raw file (:meth:`_convert_to_raw`); a
        raw one, or one leaving a multiattach type, keeps its file.
        Anything else (another share, thin or thick, an attached volume, a
        volume with snapshots becoming multiattach) is left to Cinder's
        migration, which refuses volumes with snapshots.

        :returns: (retyped, model update)
        """
        # Cinder's diff lists every spec of either type, changed or not.
        changed = {key for key, values in
                   (diff.get('extra_specs') or {}).items()
                   if values[0] != values[1]}
        other = {key for key in changed if not key.startswith('lustre:') and
                 key not in self._SCHEDULING_SPECS + ('multiattach',) and
                 not key.startswith('capabilities:')}
        found = self._pool(volume_utils.extract_host(host['host'],
                                                     level='pool') or '')
        if (other or diff.get('encryption') or found is None or
                found.device != volume.provider_location or
                volume.status != 'retyping' or
                volume.previous_status != 'available' or
                self._is_volume_attached(volume)):
            return False, None
        new_specs = new_type.extra_specs or {}
        new_layout = self._layout(new_specs, found.ost_pool)
        if new_specs.get('multiattach') == '<is> True':
            if self._snapshots_exist(volume):
                LOG.warning('Volume %s has snapshots, so its active file is '
                            'a qcow2 overlay: it cannot become a '
                            'multiattach volume.', volume.id)
                return False, None
            chain = self._chain(volume)
            if chain[0].fmt != 'raw':
                self._convert_to_raw(volume, chain[0], new_layout)
                return True, None
        if new_layout == self._volume_layout(volume):
            return True, None
        chain = self._chain(volume)
        # An empty layout goes back to the fileset's default.
        layout = new_layout or lustre_client.Layout.plain(0, 0)
        LOG.info('Restriping volume %(id)s: %(layout)s.',
                 {'id': volume.id,
                  'layout': ' '.join(layout.setstripe_args())})
        for link in chain:
            lustre_client.migrate(self._execute, link.path, layout,
                                  run_as_root=self._execute_as_root)
        return True, None

    def _convert_to_raw(self, volume, active, layout):
        """Replace the qcow2 file of a volume without snapshots by a raw one.

        The raw file, with the new layout, is written beside the volume's
        file and renamed over it; a failure leaves the volume as it was.

        :param active: the :class:`ChainFile` of the volume's file
        """
        LOG.info('Converting volume %s to a raw file for its multiattach '
                 'type.', volume.id)
        new_path = active.path + '.restore'
        self._delete(new_path)

        def fill():
            image_utils.convert_image(active.path, new_path, 'raw',
                                      src_format=active.fmt,
                                      run_as_root=self._execute_as_root,
                                      data=active.info)
            self._restore_raw_size(volume, new_path, active.info.virtual_size)
            return 'raw'

        self._make_volume_file(volume, new_path, fill, layout=layout)
        self._replace_volume_file(volume, new_path, active.path, 'raw')

    def _replace_volume_file(self, volume, new_path, path, fmt):
        """Rename a volume's new file over its file; record its format."""
        try:
            self._execute('mv', '-f', new_path, path,
                          run_as_root=self._execute_as_root)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._delete_quietly(new_path)
        self._record_format(volume, fmt)

    # Manage

    @staticmethod
    def _own_file(name):
        """Which file of a volume a name is, as this driver names them.

        :returns: an :class:`OwnName`, or None for other names
        """
        pattern = re.escape(CONF.volume_name_template).replace(
            re.escape('%s'), '(%s)' % _UUID_PATTERN)
        match = re.match(r'^%s(\..*)?$' % pattern, name)
        if not match:
            return None
        return OwnName(match.group(1), match.group(2) is None)

    @classmethod
    def _live_name_ids(cls, names):
        """The name ids of base files among ``names`` that volumes use.

        Two queries, however many names.
        """
        own = [cls._own_file(name) for name in names]
        name_ids = sorted({found.name_id for found in own
                           if found and found.is_base})
        if not name_ids:
            return set()
        ctxt = cinder_context.get_admin_context()
        return {volume.name_id for key in ('id', '_name_id')
                for volume in objects.VolumeList.get_all(
                    ctxt, filters={key: name_ids})}

    def _adoptable(self, name, live_name_ids):
        """Whether a file of this name may become a volume.

        A plain name, or the base file of a volume that no longer exists
        (left by unmanage); never the file of a live volume, nor an
        overlay or .info file.

        :param live_name_ids: :meth:`_live_name_ids` of the names at hand
        """
        if not self._MANAGEABLE_IMAGE_RE.match(name):
            return False
        own = self._own_file(name)
        return own is None or (own.is_base and
                               own.name_id not in live_name_ids)

    def _get_manageable_vol_location(self, existing_ref):
        """Find a file to manage: a regular file at the top of a share.

        The reference is ``{'source-name': 'SHARE/FILE'}``.  Files of other
        volumes, files in subdirectories and symbolic links are refused.
        """
        name = existing_ref.get('source-name')
        if not name:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref,
                reason=_('the reference must contain "source-name", as '
                         'SHARE/FILE'))
        device, _sep, filename = name.rpartition('/')
        reason = None
        if device not in self._mounted_shares:
            reason = _('%s is not a mounted share of this backend') % device
        elif not self._adoptable(filename,
                                 self._live_name_ids([filename])):
            reason = _("'%s' is not a file name a volume can be made "
                       "from: it is not a plain name, or it belongs to a "
                       "volume") % filename
        if reason is None:
            mount_point = self._get_mount_point_for_share(device)
            path = os.path.join(mount_point, filename)
            try:
                mode = os.stat(path, follow_symlinks=False).st_mode
            except OSError:
                reason = _('%s does not exist') % name
            else:
                if not stat.S_ISREG(mode):
                    reason = _('%s is not a regular file') % name
        if reason is not None:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=reason)
        return {'share': device, 'mountpoint': mount_point,
                'vol_local_path': path, 'vol_remote_path': name}

    @coordination.synchronized('{self.driver_prefix}-{volume.id}')
    def manage_existing(self, volume, existing_ref):
        """Adopt a raw or qcow2 file of a share as a volume.

        The mixin renames the file with os.rename, as the service user and
        over whatever has the volume's name, and records no format; here it
        is renamed through the executor to a free name.  Its format is read
        from the file: the administrator who hands it over vouches for it.

        The file is also locked by name: two services of a cluster asked to
        manage the same file into two volumes must not both adopt it.
        """
        source = str(existing_ref.get('source-name') or '')

        @coordination.synchronized(self._manage_lock_name(source))
        def adopt():
            return self._adopt(volume, existing_ref)

        return adopt()

    def _manage_lock_name(self, source):
        """The lock of a file to manage, named after its reference."""
        return '%s-manage-%s' % (self.driver_prefix,
                                 self._get_hash_str(source))

    def _adopt(self, volume, existing_ref):
        if volume.encryption_key_id:
            # Nothing tells that a file is a LUKS device with this key.
            raise exception.ManageExistingVolumeTypeMismatch(
                reason=_('an existing file cannot be managed as an '
                         'encrypted volume'))
        location = self._get_manageable_vol_location(existing_ref)
        path = location['vol_local_path']
        fmt, reason = self._manageable_format(path)
        if reason:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=reason)
        if fmt != 'raw' and self._is_multiattach(volume):
            # The administrator's file is not converted behind their back.
            raise exception.ManageExistingVolumeTypeMismatch(
                reason=_('%(path)s is a %(fmt)s file; a multiattach volume '
                         'is a raw file: convert it first (qemu-img '
                         'convert -O raw) or manage it with a type '
                         'without multiattach') % {'path': path,
                                                   'fmt': fmt})
        dest = os.path.join(location['mountpoint'], volume.name)
        if os.path.lexists(dest):
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref,
                reason=_('%s already exists') % dest)
        self._set_rw_permissions(path)
        self._execute('mv', path, dest, run_as_root=self._execute_as_root)
        self._record_format(volume, fmt)
        return {'provider_location': location['share']}

    def _manageable_format(self, path):
        """The format of a file to manage, or why it cannot be managed.

        The file is checked as every file of a share is; its format is
        probed, since the administrator who hands it over vouches for it,
        and it must be raw or qcow2 with no backing or data file.

        :returns: (format, None) or (None, reason)
        """
        try:
            fmt = self._qemu_img_info(path, None).file_format
        except lustre_client.LustreException as exc:
            return None, exc.msg
        if fmt not in _VOLUME_FORMATS:
            return None, _("%(path)s is a %(fmt)s image; only raw and qcow2 "
                           "files can be managed") % {'path': path,
                                                      'fmt': fmt}
        return fmt, None

    def _is_volume_manageable(self, volume_path, already_managed=False):
        """The mixin's answer, from the checks manage_existing makes."""
        if already_managed:
            return False, _('Volume already managed.')
        fmt, reason = self._manageable_format(volume_path)
        return fmt is not None, reason

    def _get_rounded_manageable_image_size(self, image_path):
        """The size of a file to manage, read as every share file is."""
        virtual_size = self._qemu_img_info(image_path, None).virtual_size
        return int(math.ceil(virtual_size / units.Gi))

    def _get_share_manageable_volumes(self, share, managed_volumes):
        """List the files at the top of a share that are or could be volumes.

        Only the top directory is read (a share may hold millions of files
        below it), and only regular files: the base files of this backend's
        volumes (reported as managed), and files with other plain names.
        """
        mount_point = self._get_mount_point_for_share(share)
        with os.scandir(mount_point) as entries:
            files = [entry for entry in entries
                     if entry.is_file(follow_symlinks=False)]
        live = self._live_name_ids(entry.name for entry in files
                                   if entry.name not in managed_volumes)
        found = []
        for entry in files:
            managed = managed_volumes.get(entry.name)
            if managed is None and not self._adoptable(entry.name, live):
                continue
            try:
                found.append(self._get_manageable_volume(share, entry.path,
                                                         managed))
            except Exception as exc:
                LOG.error('Cannot inspect %(path)s: %(err)s',
                          {'path': entry.path, 'err': exc})
        return found
