# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Real Cinder objects and drivers for the benchmark, outside any test.

The benchmark process and its backup workers share one SQLite database
(Cinder's real schema, from its own migrations), one coordination lock
directory and one configuration, described by a small JSON "layout" that
the benchmark writes (see :func:`layout`).  Drivers are built as the volume
and backup services build them: from a configuration group, then
``do_setup`` and ``check_for_setup_error``.
"""

import logging as py_logging
import os

from oslo_config import cfg
from oslo_utils import units

CONF = cfg.CONF

MGS = '10.0.0.1@tcp'
FSNAME = 'lbench'
HOST = 'bench'
# Filesets (directories) of the one stand-in filesystem; everything runs on
# the same filesystem, so every contender sees the same disk.
VOLUME_FILESET = '/volumes'          # LustreDriver's share
NFS_DIR = 'nfs'                      # NfsDriver's export (a directory)
LUSTRE_BACKUP_FILESET = '/backup'    # LustreBackupDriver's share
POSIX_DIR = 'posix'                  # PosixBackupDriver's directory
NFS_BACKUP_DIR = 'nfsbackup'         # NFSBackupDriver's export
SCRATCH_DIR = 'scratch'              # cp/dd copy limits
# Stats refresh: one share per volume count for each driver, so that every
# count is measured in the same round as the others.
STATS_COUNTS = (10, 1000, 10000)
STATS_FILESETS = tuple('/stats%d' % count for count in STATS_COUNTS)
STATS_NFS_DIRS = tuple('nfs-stats%d' % count for count in STATS_COUNTS)
DIRECTORIES = (NFS_DIR, POSIX_DIR, NFS_BACKUP_DIR, SCRATCH_DIR) + \
    STATS_NFS_DIRS
FILESETS = (VOLUME_FILESET, LUSTRE_BACKUP_FILESET)


def layout(work):
    """Paths and share names of one benchmark run under ``work``."""
    mnt = os.path.join(work, 'mnt')
    root = os.path.join(mnt, 'root')
    return {
        'work': work,
        'state_path': os.path.join(work, 'state'),
        'database': os.path.join(work, 'cinder.sqlite'),
        'locks': os.path.join(work, 'locks'),
        'log': os.path.join(work, 'cinder.log'),
        'root_device': '%s:/%s' % (MGS, FSNAME),
        'root_mount': root,
        'lustre_share': '%s:/%s%s' % (MGS, FSNAME, VOLUME_FILESET),
        'lustre_mount_base': os.path.join(mnt, 'lustre'),
        'nfs_share': '127.0.0.1:%s' % os.path.join(root, NFS_DIR),
        'nfs_mount_base': os.path.join(mnt, 'nfs'),
        'backup_lustre_share': '%s:/%s%s' % (MGS, FSNAME,
                                             LUSTRE_BACKUP_FILESET),
        'backup_lustre_mount_base': os.path.join(mnt, 'backup-lustre'),
        'backup_posix_path': os.path.join(root, POSIX_DIR),
        'backup_nfs_share': '127.0.0.1:%s' % os.path.join(root,
                                                          NFS_BACKUP_DIR),
        'backup_nfs_mount_base': os.path.join(mnt, 'backup-nfs'),
        'scratch': os.path.join(root, SCRATCH_DIR),
        'stats_lustre_shares': ['%s:/%s%s' % (MGS, FSNAME, fileset)
                                for fileset in STATS_FILESETS],
        'stats_nfs_shares': ['127.0.0.1:%s' % os.path.join(root, name)
                             for name in STATS_NFS_DIRS],
    }


def setup(paths, create_db=False):
    """Configure Cinder for this process: DB, locks, RPC, privsep.

    Call once per process, before any driver is built.
    """
    for name in ('state_path', 'locks'):
        os.makedirs(paths[name], exist_ok=True)
    py_logging.basicConfig(
        filename=paths['log'], level=py_logging.WARNING,
        format='%(asctime)s %(process)d %(levelname)s %(name)s: '
               '%(message)s')

    from oslo_concurrency import lockutils

    from cinder.common import config  # noqa: F401  (registers options)
    from cinder import coordination
    from cinder import objects
    from cinder import rpc

    objects.register_all()
    CONF([], project='cinder', default_config_files=[],
         default_config_dirs=[])
    CONF.set_override('host', HOST)
    CONF.set_override('state_path', paths['state_path'])
    CONF.set_override('connection', 'sqlite:///%s' % paths['database'],
                      group='database')
    CONF.set_override('lock_path', paths['locks'], group='oslo_concurrency')
    lockutils.set_defaults(paths['locks'])
    CONF.set_override('backend_url', 'file://%s' % paths['locks'],
                      group='coordination')
    # No message bus: the fake driver (registering the messaging options
    # first), and notifications off, as they are by default.
    import oslo_messaging
    oslo_messaging.get_rpc_transport(CONF, url='fake:/').cleanup()
    CONF.set_override('transport_url', 'fake:/')
    CONF.set_override('image_conversion_dir',
                      os.path.join(paths['state_path'], 'conversion'))
    rpc.init(CONF)
    coordination.COORDINATOR.start()
    # Everything runs as root already: privileged calls run in this
    # process instead of a privsep daemon started through sudo.
    import cinder.privsep
    import os_brick.privileged
    cinder.privsep.sys_admin_pctxt.set_client_mode(False)
    os_brick.privileged.default.set_client_mode(False)
    if create_db:
        from cinder.db import migration
        py_logging.getLogger('alembic').setLevel(py_logging.WARNING)
        migration.db_sync()


def admin_context():
    from cinder import context
    return context.get_admin_context()


# Volume drivers


def _share_driver(paths, ctx, driver_class, opts, prefix, share, name,
                  **options):
    """A RemoteFS driver of the NAS kind on one share (PREFIX_* options)."""
    from cinder.volume import configuration
    from cinder.volume import driver
    from cinder.volume.drivers import remotefs

    shares_config = os.path.join(paths['work'], 'shares-%s' % name)
    with open(shares_config, 'w') as f:
        f.write(share + '\n')
    group = 'bench_%s' % name
    conf = configuration.Configuration(driver.volume_opts,
                                       config_group=group)
    conf.append_config_values(opts)
    conf.append_config_values(remotefs.nas_opts)
    options.update({prefix + '_shares_config': shares_config,
                    prefix + '_mount_point_base':
                        paths[prefix + '_mount_base']})
    for key, value in dict(options, nas_secure_file_operations='false',
                           nas_secure_file_permissions='false',
                           volume_backend_name=prefix).items():
        CONF.set_override(key, value, group=group)
    volume_driver = driver_class(configuration=conf,
                                 host='%s@%s' % (HOST, prefix))
    volume_driver.do_setup(ctx)
    volume_driver.check_for_setup_error()
    return volume_driver


def lustre_driver(paths, ctx, share=None, name='lustre'):
    """LustreDriver on one share, as cinder-volume builds a backend."""
    from cinder.volume.drivers import lustre
    return _share_driver(paths, ctx, lustre.LustreDriver, lustre.lustre_opts,
                         'lustre', share or paths['lustre_share'], name)


def nfs_driver(paths, ctx, sparsed, share=None, name='nfs'):
    """Cinder's NfsDriver on a directory of the same filesystem.

    The directory is exported as 127.0.0.1:/DIR and mounted through the
    mount.nfs shim, which bind-mounts it.
    """
    from cinder.volume.drivers import nfs
    return _share_driver(paths, ctx, nfs.NfsDriver, nfs.nfs_opts, 'nfs',
                         share or paths['nfs_share'], name,
                         nfs_sparsed_volumes=sparsed)


# Cinder objects


def volume_type(ctx, name, **extra_specs):
    from cinder import objects
    from cinder.volume import volume_types
    vtype = volume_types.create(ctx, name, extra_specs)
    return objects.VolumeType.get_by_id(ctx, vtype['id'])


def new_volume(ctx, size, host, vtype, **fields):
    """A volume record in status 'creating', as the API leaves it."""
    from cinder import objects
    volume = objects.Volume(
        context=ctx, size=size, status='creating', host=host,
        volume_type_id=vtype.id, attach_status='detached',
        user_id='bench', project_id='bench', availability_zone='nova',
        **fields)
    volume.create()
    return objects.Volume.get_by_id(ctx, volume.id)


def created(volume, update):
    volume.update(update or {})
    volume.status = 'available'
    volume.save()
    return volume


def new_snapshot(ctx, volume):
    from cinder import objects
    snapshot = objects.Snapshot(
        context=ctx, volume_id=volume.id, status='creating',
        volume_size=volume.size, user_id='bench', project_id='bench',
        volume_type_id=volume.volume_type_id)
    snapshot.create()
    return objects.Snapshot.get_by_id(ctx, snapshot.id)


def new_backup(ctx, volume_id, size):
    from cinder import objects
    backup = objects.Backup(
        context=ctx, volume_id=volume_id, size=size, status='creating',
        user_id='bench', project_id='bench', host=HOST,
        availability_zone='nova')
    backup.create()
    return backup


GIB = units.Gi
