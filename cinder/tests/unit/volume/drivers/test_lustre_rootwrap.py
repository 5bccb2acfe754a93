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

"""The rootwrap filters of the Lustre drivers, checked against the drivers.

Both drivers run through their operations on a fake Lustre client host that
stands in for ``processutils.execute``: it plays the few commands whose
effects later steps read (files, qemu-img metadata, mounts) and records
every command run as root.  Each recorded command is then matched with
oslo.rootwrap's own code against the filters that cinder-rootwrap would
read, and every Lustre filter must be matched by some operation, so the
filters allow what the drivers run as root and nothing more.

The filters are found next to the code: ``etc/cinder/rootwrap.d`` of a
source tree, or of the prefix this package was installed into.  There,
``lustre.filters`` is checked on its own; in a tree without it (Cinder's,
where the filters are merged into ``volume.filters``) the whole directory
is, and the filters whose names start with ``lustre`` must be needed.
"""

import json
import os
import shutil
import sys
import tempfile
from unittest import mock

import ddt
import fixtures
from oslo_concurrency import processutils as putils
from oslo_rootwrap import filters as rootwrap_filters
from oslo_rootwrap import wrapper
from oslo_utils import units

from cinder.backup.drivers import lustre as lustre_backup
from cinder import context
from cinder import exception
from cinder.image import image_utils
from cinder import objects
from cinder.privsep import format_inspector
from cinder.tests.unit import fake_constants as fake
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume
from cinder.tests.unit import test
from cinder import utils
from cinder.volume import configuration as conf
from cinder.volume.drivers import lustre
from cinder.volume.drivers import lustre_client
from cinder.volume.drivers import remotefs

SHARE = '10.0.0.1@tcp:/lfs01/cinder'
SHARE2 = 'mgs1@o2ib,mgs1b@tcp:mgs2@o2ib:/lfs02'
BACKUP_SHARE = '10.0.0.1@tcp:/lfs01/backup'
# exec_dirs of Cinder's rootwrap.conf
EXEC_DIRS = ['/sbin', '/usr/sbin', '/bin', '/usr/bin', '/usr/local/bin',
             '/usr/local/sbin']
FILTERS_SUBDIR = os.path.join('etc', 'cinder', 'rootwrap.d')
OWN_FILTERS = 'lustre.filters'
SERVICE_UID = 165
EOPNOTSUPP = 'fallocate: fallocate failed: Operation not supported'
ENOSPC = 'fallocate: fallocate failed: No space left on device'
# NAS security settings: (nas_secure_file_operations,
# nas_secure_file_permissions).  With secure operations, files are handled
# as the service user and only mounts and qemu-img info run as root.
SECURITY_MODES = {'root': ('false', 'false'),
                  'root_660': ('false', 'true'),
                  'secure': ('true', 'true')}


def find_filters_dir():
    """The rootwrap.d directory nearest to this module, going up."""
    path = os.path.dirname(os.path.abspath(__file__))
    while True:
        candidate = os.path.join(path, FILTERS_SUBDIR)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(path)
        if parent == path:
            return os.path.join(sys.prefix, FILTERS_SUBDIR)
        path = parent


class FakeLustreHost(object):
    """A Lustre client host at the process boundary.

    ``execute`` replaces ``processutils.execute``: every command run as
    root is recorded as cinder-rootwrap receives it, and the commands are
    played on a temporary directory well enough for the drivers' next
    steps.  ``fail`` maps a command name to the stderr it fails with.
    """

    def __init__(self):
        self.root_commands = []
        self.mounts = {}
        self.images = {}
        self.fail = {}

    def read_mounts(self):
        return dict(self.mounts)

    def format_of(self, path, **kwargs):
        return self.images.get(path, {}).get('format', 'raw')

    def execute(self, *cmd, **kwargs):
        cmd = tuple(str(arg) for arg in cmd)
        if kwargs.get('run_as_root'):
            if not kwargs.get('root_helper'):
                raise AssertionError('%s: run as root without the root '
                                     'helper' % ' '.join(cmd))
            self.root_commands.append(cmd)
        if cmd[0] in self.fail:
            raise putils.ProcessExecutionError(
                cmd=' '.join(cmd), exit_code=1, stderr=self.fail[cmd[0]])
        args = cmd[2:] if cmd[:2] == ('env', 'LC_ALL=C') else cmd
        handler = getattr(self, '_' + args[0].replace('-', '_'), None)
        if handler is None:
            raise AssertionError('unexpected command: %s' % ' '.join(cmd))
        return handler(*args[1:]) or ('', '')

    def _size(self, path):
        info = self.images.get(path)
        if info and info['format'] != 'raw':
            return info['size']
        return os.path.getsize(path)

    def _resize_raw(self, path, size):
        with open(path, 'ab') as f:
            f.truncate(size)

    def _mkdir(self, *args):
        os.makedirs(args[-1], exist_ok=True)

    def _mount(self, *args):
        self.mounts[args[-1]] = args[-2]

    def _lfs(self, command, *args):
        # Outputs as lfs(1) prints them (lfs-df(1), lctl-pool_list(8)).
        if command == '--version':
            return 'lfs 2.15.6\n', ''
        if command == 'getname':
            return 'lfs01-ffff9b2c7e5b1000 %s\n' % args[-1], ''
        if command == 'pool_list':
            return 'Pools from lfs01:\nlfs01.flash\n', ''
        if command == 'df':
            return ('UUID 1K-blocks Used Available Use% Mounted on\n'
                    'filesystem_summary: 626208 2800 569088 1% /mnt\n', '')
        if command == 'setstripe' and not os.path.isdir(args[-1]):
            # On a new file, lfs setstripe creates it empty.
            open(args[-1], 'ab').close()
        elif command not in ('setstripe', 'migrate'):
            raise AssertionError('unexpected lfs %s' % command)

    def _chmod(self, *args):
        pass

    _chgrp = _chown = _chmod

    def _truncate(self, *args):
        size = 0 if args[0] == '-s0' else int(args[1])
        open(args[-1], 'ab').close()
        os.truncate(args[-1], size)

    def _fallocate(self, _offset_flag, offset, _length_flag, length, path):
        with open(path, 'ab') as f:
            if f.tell() < int(offset) + int(length):
                f.truncate(int(offset) + int(length))

    def _dd(self, *args):
        opts = dict(arg.split('=', 1) for arg in args)
        if opts.get('conv') == 'excl':
            os.close(os.open(opts['of'], os.O_CREAT | os.O_EXCL, 0o644))
            return
        end = (int(opts['seek']) + int(opts['count'])) * units.Mi
        with open(opts['of'], 'ab') as f:
            if f.tell() < end:
                f.truncate(end)

    def _rm(self, _force, path):
        if os.path.lexists(path):
            os.remove(path)
        self.images.pop(path, None)

    def _mv(self, *args):
        source, dest = args[-2:]
        os.rename(source, dest)
        if source in self.images:
            self.images[dest] = self.images.pop(source)

    def _qemu_img(self, subcommand, *args):
        args = list(args)
        path = args[-1]
        if subcommand == 'info':
            fmt = args[args.index('-f') + 1]
            if fmt not in ('raw', 'qcow2'):
                raise putils.ProcessExecutionError(
                    exit_code=1, stderr='Image is not in %s format' % fmt)
            out = {'filename': path, 'format': fmt, 'actual-size': 0,
                   'virtual-size': self._size(path)}
            backing = self.images.get(path, {}).get('backing')
            if fmt == 'qcow2':
                out['format-specific'] = {'type': 'qcow2',
                                          'data': {'compat': '1.1'}}
                if backing:
                    out['backing-filename'] = backing
                    out['full-backing-filename'] = backing
                    out['backing-filename-format'] = self.images[path][
                        'backing_format']
            return json.dumps(out), ''
        if subcommand == 'create':
            path, size = args[-2:]
            backing = args[args.index('-b') + 1] if '-b' in args else None
            backing_format = (args[args.index('-F') + 1] if '-F' in args
                              else None)
            with open(path, 'wb') as f:
                f.write(b'QFI\xfb')
            self.images[path] = {'format': 'qcow2', 'size': int(size),
                                 'backing': backing,
                                 'backing_format': backing_format}
        elif subcommand == 'convert':
            source, dest = args[-2:]
            out_format = args[args.index('-O') + 1]
            size = self._size(source)
            with open(dest, 'wb') as f:
                if out_format == 'raw':
                    f.truncate(size)
                else:
                    f.write(b'QFI\xfb')
            self.images[dest] = {'format': out_format, 'size': size}
        elif subcommand == 'resize':
            path, size = args[-2:]
            size = int(size.rstrip('G')) * units.Gi
            if self.format_of(path) == 'raw':
                self._resize_raw(path, size)
            else:
                self.images[path]['size'] = size
        elif subcommand == 'rebase':
            image = args[args.index('-b') + 2]
            self.images[image]['backing'] = args[args.index('-b') + 1]
            self.images[image]['backing_format'] = args[args.index('-F') + 1]
        elif subcommand != 'commit':
            raise AssertionError('unexpected qemu-img %s' % subcommand)


@ddt.ddt
class LustreRootwrapTestCase(test.TestCase):
    """Every root command of the drivers passes, and needs, the filters."""

    VOLUME_OPERATIONS = (
        'setup', 'setup_without_mount_options', 'setup_auto_security',
        'create_sparse_volume', 'create_qcow2_volume', 'create_thick_volume',
        'create_thick_volume_writing_zeros', 'create_volume_with_layout',
        'create_volume_with_backend_layout', 'retype_restripe',
        'delete_volume',
        'snapshots', 'revert_to_snapshot', 'volume_from_snapshot',
        'clone', 'extend', 'extend_thick', 'extend_thick_without_space',
        'attach', 'restore_into_qcow2_volume', 'copy_image_to_volume',
        'copy_volume_to_image', 'update_migrated_volume', 'migrate_volume',
        'manage_existing',
    )
    BACKUP_OPERATIONS = ('backup_setup', 'backup_setup_not_writable',
                         'backup_setup_without_mount_options',
                         'backup_container')

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.filters_dir = find_filters_dir()
        own = os.path.join(cls.filters_dir, OWN_FILTERS)
        cls.standalone = os.path.isfile(own)
        cls.filters_source = own if cls.standalone else cls.filters_dir
        if cls.standalone:
            # Beside an installed Cinder, rootwrap.d also holds Cinder's
            # volume.filters: check ours on their own.
            cls.load_dir = cls.tmp_filters_dir = tempfile.mkdtemp()
            shutil.copy(own, cls.load_dir)
        else:
            cls.load_dir = cls.filters_dir
            cls.tmp_filters_dir = None

    @classmethod
    def tearDownClass(cls):
        if cls.tmp_filters_dir:
            shutil.rmtree(cls.tmp_filters_dir, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.filters = wrapper.load_filters([self.load_dir])
        self.own_filters = [f for f in self.filters
                            if f.name.startswith('lustre')]
        self.context = context.get_admin_context()
        self.mock_object(lustre_client, 'find_mount_helper',
                         return_value='/sbin/mount.lustre')
        self.mock_object(lustre_client.time, 'sleep')
        self.mock_object(lustre_backup.time, 'sleep')
        self.mock_object(objects.Volume, 'save')

    # The world an operation runs in

    def new_host(self):
        host = FakeLustreHost()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.host = host
        self.mock_object(putils, 'execute', side_effect=host.execute)
        self.mock_object(lustre_client.LustreMountClient, '_read_mounts',
                         side_effect=host.read_mounts)
        self.mock_object(format_inspector, 'get_format_if_safe',
                         side_effect=host.format_of)
        # The services run as an unprivileged user, whoever runs the tests.
        self.mock_object(os, 'geteuid', return_value=SERVICE_UID)
        self.mock_object(os, 'getegid', return_value=SERVICE_UID)
        return host

    def new_driver(self, security='root', mount_options='flock',
                   config=None, **kwargs):
        host = self.new_host()
        shares_file = os.path.join(self.tmp, 'lustre_shares')
        with open(shares_file, 'w') as f:
            f.write('%s\n%s -o noatime\n' % (SHARE, SHARE2))
        configuration = conf.Configuration(None)
        configuration.append_config_values(lustre.lustre_opts)
        configuration.append_config_values(remotefs.nas_opts)
        self.override_config('lustre_shares_config', shares_file)
        self.override_config('lustre_mount_point_base',
                             os.path.join(self.tmp, 'mnt'))
        self.override_config('lustre_mount_options', mount_options)
        self.override_config('lustre_qcow2_volumes', False)
        for name in ('lustre_layout', 'lustre_stripe_count',
                     'lustre_stripe_size', 'lustre_ost_pool'):
            self.override_config(name, None)
        for name, value in (config or {}).items():
            self.override_config(name, value)
        operations, permissions = SECURITY_MODES.get(security, security)
        self.override_config('nas_secure_file_operations', operations)
        self.override_config('nas_secure_file_permissions', permissions)
        self.override_config('image_conversion_dir',
                             os.path.join(self.tmp, 'conversion'))
        driver = lustre.LustreDriver(execute=host.execute,
                                     configuration=configuration, **kwargs)
        # Cinder's execute wrapper, which calls processutils.execute.
        self.assertIs(utils.execute, driver._execute)
        driver.do_setup(self.context)
        return driver

    def volume(self, driver, volume_id=fake.VOLUME_ID, share=SHARE, size=1,
               specs=None, create=True, **updates):
        pool = lustre_client.Share.parse(share).fileset
        volume = fake_volume.fake_volume_obj(
            self.context, id=volume_id, size=size, provider_location=share,
            host='node@lustre#%s' % pool, **updates)
        volume.admin_metadata = {}
        volume.volume_type = fake_volume.fake_volume_type_obj(
            self.context, extra_specs=specs or {})
        if create:
            driver.create_volume(volume)
        return volume

    def snapshot(self, volume, snapshot_id=fake.SNAPSHOT_ID):
        snapshot = fake_snapshot.fake_snapshot_obj(
            self.context, id=snapshot_id, volume_id=volume.id,
            volume_size=volume.size, status='available')
        snapshot.volume = volume
        return snapshot

    # Volume driver operations

    def op_setup(self, security):
        self.new_driver(security)

    def op_setup_without_mount_options(self, security):
        self.new_driver(security, mount_options='')

    def op_setup_auto_security(self, security):
        # A new installation: the RemoteFS marker file decides 'auto'.
        self.new_driver(('auto', 'auto'), is_vol_db_empty=True)

    def op_create_sparse_volume(self, security):
        self.volume(self.new_driver(security))

    def op_create_qcow2_volume(self, security):
        driver = self.new_driver(security)
        self.override_config('lustre_qcow2_volumes', True)
        self.volume(driver)

    def op_create_thick_volume(self, security):
        self.volume(self.new_driver(security),
                    specs={'provisioning:type': 'thick'})

    def op_create_thick_volume_writing_zeros(self, security):
        driver = self.new_driver(security)
        self.host.fail['fallocate'] = EOPNOTSUPP
        self.volume(driver, specs={'provisioning:type': 'thick'})

    def op_create_volume_with_layout(self, security):
        self.volume(self.new_driver(security),
                    specs={'lustre:stripe_count': '4',
                           'lustre:stripe_size': '4M'})

    def op_create_volume_with_backend_layout(self, security):
        driver = self.new_driver(
            security, config={'lustre_layout': '-E 64M -c 1 -E -1 -c 4'})
        self.volume(driver, specs={'provisioning:type': 'thick'})

    def op_retype_restripe(self, security):
        driver = self.new_driver(security)
        volume = self.volume(driver)
        volume.status = 'retyping'
        volume.previous_status = 'available'
        new_type = fake_volume.fake_volume_type_obj(
            self.context, extra_specs={'lustre:stripe_count': '2'})
        retyped, _update = driver.retype(
            self.context, volume, new_type,
            {'extra_specs': {'lustre:stripe_count': (None, '2')}},
            {'host': volume.host})
        self.assertTrue(retyped)

    def op_delete_volume(self, security):
        driver = self.new_driver(security)
        driver.delete_volume(self.volume(driver))

    def op_snapshots(self, security):
        driver = self.new_driver(security)
        volume = self.volume(driver, size=2)
        first = self.snapshot(volume)
        second = self.snapshot(volume, fake.SNAPSHOT2_ID)
        driver.create_snapshot(first)
        driver.create_snapshot(second)
        # An older snapshot (merged into the next overlay), then the last.
        driver.delete_snapshot(first)
        driver.delete_snapshot(second)

    def op_revert_to_snapshot(self, security):
        driver = self.new_driver(security)
        volume = self.volume(driver)
        snapshot = self.snapshot(volume)
        driver.create_snapshot(snapshot)
        driver.revert_to_snapshot(self.context, volume, snapshot)

    def op_volume_from_snapshot(self, security):
        driver = self.new_driver(security)
        source = self.volume(driver)
        snapshot = self.snapshot(source)
        driver.create_snapshot(snapshot)
        bigger_thick = self.volume(driver, fake.VOLUME2_ID, share=SHARE2,
                                   size=2, create=False,
                                   specs={'provisioning:type': 'thick'})
        driver.create_volume_from_snapshot(bigger_thick, snapshot)

    def op_clone(self, security):
        driver = self.new_driver(security)
        source = self.volume(driver)
        clone = self.volume(driver, fake.VOLUME2_ID, share=SHARE2,
                            create=False)

        def create(snapshot):
            snapshot.id = fake.SNAPSHOT3_ID
        self.mock_object(objects.Snapshot, 'create', new=create)
        self.mock_object(objects.Snapshot, 'save')
        self.mock_object(objects.Snapshot, 'destroy')
        self.mock_object(objects.Volume, 'get_by_id', return_value=source)
        driver.create_cloned_volume(clone, source)

    def op_extend(self, security):
        driver = self.new_driver(security)
        driver.extend_volume(self.volume(driver), 2)

    def op_extend_thick(self, security):
        driver = self.new_driver(security)
        driver.extend_volume(
            self.volume(driver, specs={'provisioning:type': 'thick'}), 2)

    def op_extend_thick_without_space(self, security):
        driver = self.new_driver(security)
        volume = self.volume(driver, specs={'provisioning:type': 'thick'})
        self.host.fail['fallocate'] = ENOSPC
        self.assertRaises(exception.ExtendVolumeError, driver.extend_volume,
                          volume, 2)

    def op_attach(self, security):
        driver = self.new_driver(security)
        volume = self.volume(driver)
        driver.initialize_connection(volume, {'host': 'compute1'})
        driver.terminate_connection(volume, {'host': 'compute1'})

    def op_restore_into_qcow2_volume(self, security):
        driver = self.new_driver(security)
        self.override_config('lustre_qcow2_volumes', True)
        volume = self.volume(driver)
        volume.status = 'restoring-backup'
        driver.initialize_connection(volume, {'host': 'backup1'})
        os.truncate(driver.local_path(volume), units.Mi)
        driver.terminate_connection(volume, {'host': 'backup1'})

    def op_copy_image_to_volume(self, security):
        driver = self.new_driver(security)
        volume = self.volume(driver)
        image_service = mock.Mock(temp_images=None)
        image_service.show.return_value = {
            'id': fake.IMAGE_ID, 'disk_format': 'qcow2',
            'container_format': 'bare', 'size': units.Mi}

        def fetch(context, service, image_id, path, *args, **kwargs):
            with open(path, 'wb') as f:
                f.write(b'QFI\xfb')
            self.host.images[path] = {'format': 'qcow2', 'size': units.Gi}
        self.mock_object(image_utils, 'fetch', side_effect=fetch)
        driver.copy_image_to_volume(self.context, volume, image_service,
                                    fake.IMAGE_ID)

    def op_copy_volume_to_image(self, security):
        driver = self.new_driver(security)
        volume = self.volume(driver)
        volume.glance_metadata = {}
        image_service = mock.Mock()
        for disk_format in ('raw', 'qcow2'):
            driver.copy_volume_to_image(
                self.context, volume, image_service,
                {'id': fake.IMAGE_ID, 'disk_format': disk_format,
                 'container_format': 'bare'})

    def op_update_migrated_volume(self, security):
        driver = self.new_driver(security)
        original = self.volume(driver, create=False)
        migrated = self.volume(driver, fake.VOLUME2_ID, share=SHARE2)
        driver.update_migrated_volume(self.context, original, migrated,
                                      'available')

    def op_migrate_volume(self, security):
        driver = self.new_driver(security)
        volume = self.volume(driver, specs={'provisioning:type': 'thick'})
        moved, _update = driver.migrate_volume(
            self.context, volume,
            {'capabilities': {'location_info': 'LustreDriver:' + SHARE2}})
        self.assertTrue(moved)

    def op_manage_existing(self, security):
        driver = self.new_driver(security)
        mount_point = driver._get_mount_point_for_share(SHARE)
        with open(os.path.join(mount_point, 'golden-image.raw'), 'wb') as f:
            f.truncate(units.Gi)
        volume = self.volume(driver, create=False)
        ref = {'source-name': SHARE + '/golden-image.raw'}
        driver.manage_existing_get_size(volume, ref)
        driver.manage_existing(volume, ref)

    # Backup driver operations

    def new_backup_driver(self, mount_options='flock', writable=True):
        self.new_host()
        base = os.path.join(self.tmp, 'backup_mnt')
        self.override_config('backup_lustre_share', BACKUP_SHARE)
        self.override_config('backup_lustre_mount_point_base', base)
        self.override_config('backup_lustre_mount_options', mount_options)
        if not writable:
            # The fileset's top directory belongs to root: it is given to
            # the service's group, once.
            mount_point = lustre_client.LustreMountClient(
                'rh', mount_point_base=base).get_mount_point(BACKUP_SHARE)
            access = os.access
            refused = []

            def fake_access(path, mode, **kwargs):
                if path == mount_point and not refused:
                    refused.append(path)
                    return False
                return access(path, mode, **kwargs)
            self.mock_object(lustre_backup.os, 'access',
                             side_effect=fake_access)
            self.mock_object(lustre_backup.utils, 'get_file_gid',
                             return_value=0)
            self.mock_object(lustre_backup.utils, 'get_file_mode',
                             return_value=0o755)
        return lustre_backup.LustreBackupDriver(self.context)

    def op_backup_setup(self, security):
        self.new_backup_driver()

    def op_backup_setup_without_mount_options(self, security):
        self.new_backup_driver(mount_options='')

    def op_backup_setup_not_writable(self, security):
        self.new_backup_driver(writable=False)

    def op_backup_container(self, security):
        driver = self.new_backup_driver()
        driver.put_container('ab/cd/%s' % fake.VOLUME_ID)

    # Running them

    def run_operation(self, operation, security='root'):
        """Run an operation in a world of its own; its root commands."""
        getattr(self, 'op_' + operation)(security)
        return list(self.host.root_commands)

    def matching(self, command):
        """The filter cinder-rootwrap would use, or None."""
        try:
            return wrapper.match_filter(self.filters, list(command),
                                        exec_dirs=EXEC_DIRS)
        except wrapper.FilterMatchNotExecutable as exc:
            # The filter matches; this host lacks the executable.
            return exc.match
        except wrapper.NoFilterMatched:
            return None

    def own_matches(self, command):
        return [f.name for f in self.own_filters if f.match(list(command))]

    def assertAllowed(self, operation, commands):
        refused = [' '.join(c) for c in commands if not self.matching(c)]
        self.assertEqual([], refused,
                         '%s runs these as root, which %s refuses' %
                         (operation, self.filters_source))
        if self.standalone:
            ambiguous = [(' '.join(c), self.own_matches(c)) for c in commands
                         if len(self.own_matches(c)) != 1]
            self.assertEqual([], ambiguous,
                             'commands matched by more than one filter')

    @ddt.data(*['%s/%s' % (operation, security)
                for operation in VOLUME_OPERATIONS
                for security in SECURITY_MODES])
    def test_volume_driver_root_commands_pass(self, case):
        operation, security = case.split('/')
        commands = self.run_operation(operation, security)
        self.assertAllowed(operation, commands)
        if security == 'secure' and operation != 'setup_auto_security':
            # In secure mode only mounts and qemu-img info run as root.
            self.assertEqual(
                set(), {c[0] for c in commands} - {'mount', 'env'})

    @ddt.data(*BACKUP_OPERATIONS)
    def test_backup_driver_root_commands_pass(self, operation):
        self.assertAllowed(operation, self.run_operation(operation))

    def test_every_filter_is_needed(self):
        used = set()
        for operation in self.VOLUME_OPERATIONS + self.BACKUP_OPERATIONS:
            for security in SECURITY_MODES:
                for command in self.run_operation(operation, security):
                    used.update(self.own_matches(command))
        self.assertNotEqual([], self.own_filters)
        self.assertEqual([], sorted({f.name for f in self.own_filters} -
                                    used),
                         'filters no operation needs')

    def test_filters_are_narrow(self):
        """Our own commands are matched argument by argument."""
        broad = sorted(f.name for f in self.own_filters
                       if type(f) is rootwrap_filters.CommandFilter and
                       f.exec_path not in ('qemu-img', 'lfs'))
        self.assertEqual([], broad)

    @ddt.data(
        # Device strings of mount.lustre(8), as the shares file has them.
        '10.0.0.1@tcp:/lfs01', 'cfs21@tcp0:/testfs/dir',
        'mgs1@tcp0,mgs1ib@o2ib0:mgs2@tcp0,mgs2ib@o2ib0:/testfs',
        'cfs21:/testfs', '192.168.1.1@o2ib3:/fs_1/a/b.c/',
        'mgs-a.example.com@kfi:/x-y')
    def test_every_valid_device_can_be_mounted(self, device):
        share = lustre_client.Share.parse(device)
        mount_point = '/var/lib/cinder/mnt/' + '0123456789abcdef' * 2
        for options in ([], ['-o', 'flock'],
                        ['-o', 'flock', '-o', 'network=o2ib1,noatime']):
            command = ['mount', '-t', 'lustre'] + options + [
                share.device, mount_point]
            self.assertIsNotNone(self.matching(command), command)

    @ddt.data(
        ['mount', '-t', 'lustre', '10.0.0.1@tcp:/lfs01/../x',
         '/var/lib/cinder/mnt/' + '0' * 32],
        ['mount', '-t', 'nfs', '10.0.0.1:/export',
         '/var/lib/cinder/mnt/' + '0' * 32],
        ['mount', '-t', 'lustre', '10.0.0.1@tcp:/lfs01', '/etc'],
        ['rm', '-f', '/etc/passwd'],
        ['rm', '-rf', '/var/lib/cinder/mnt/' + '0' * 32],
        ['rm', '-f', '/var/lib/cinder/mnt/' + '0' * 32 + '/..'],
        ['chmod', '4755', '/var/lib/cinder/mnt/' + '0' * 32 + '/volume-1'],
        ['chmod', '666', '/var/lib/cinder/mnt/' + '0' * 32 + '/volume-1'],
        ['chown', '0:0', '/var/lib/cinder/mnt/' + '0' * 32 + '/volume-1'],
        ['truncate', '-s', '0', '/var/lib/cinder/mnt/../../etc/shadow'],
        ['chgrp', '0', '/etc'],
        ['dd', 'if=/dev/sda', 'of=/var/lib/cinder/mnt/' + '0' * 32 + '/v',
         'bs=1M', 'seek=0', 'count=1', 'conv=notrunc'],
    )
    def test_other_commands_are_refused(self, command):
        if not self.standalone:
            self.skipTest('checked on lustre.filters only; Cinder allows '
                          'these commands broadly')
        self.assertIsNone(self.matching(command))
