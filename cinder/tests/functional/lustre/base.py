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

"""Functional tests of the Lustre drivers on the Lustre stand-in.

Real driver objects, a real configuration and real Cinder objects (in the
test database) act on stand-in Lustre shares: real mounts of real
filesystems, real files, real qemu-img.  The tests act as the hypervisor:
they ask the driver for the connection, then read and write what the guest
sees with qemu-io on the file it names, in the format it names, and compare
it with a model of the disk kept beside.

They need root, qemu-img/qemu-io and the stand-in's commands installed
(tools/run-tests installs them); each test class runs its own stand-in
configuration and state in a temporary directory, and unmounts everything
it mounted, also when a test fails.
"""

import configparser
import json
import os
import shutil
import subprocess
import tempfile

import fixtures
from oslo_utils import units

from cinder.backup.drivers import lustre as lustre_backup
from cinder import context
from cinder import objects
import cinder.privsep
from cinder.tests.unit import test
from cinder.volume import configuration as conf
from cinder.volume.drivers import lustre
from cinder.volume.drivers import remotefs
from cinder.volume import volume_types
from cinder.volume import volume_utils

STANDIN = '/usr/local/sbin/lustre-standin'
MGS = '10.0.0.1@tcp'
SHARE1 = '%s:/lfs01/cinder' % MGS
SHARE1B = '%s:/lfs01/cinder-b' % MGS
SHARE2 = '%s:/lfs02' % MGS
BACKUP_SHARE = '%s:/lfs03/backup' % MGS

# Filesystems of the stand-in, per test class: name -> (size, OSTs, pools).
FILESYSTEMS = {
    'lfs01': ('8G', 4, 'flash:0-1 disk:2-3'),
    'lfs02': ('600M', 2, ''),
    'lfs03': ('8G', 4, ''),
    'lfs04': ('300M', 2, ''),
}
FILESETS = (('lfs01', '/cinder'), ('lfs01', '/cinder-b'),
            ('lfs03', '/backup'), ('lfs04', '/backup'))


def run(*cmd, check=True, env=None):
    """Run a command; return (exit status, stdout + stderr)."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env)
    if check and proc.returncode:
        raise AssertionError('%s failed (%d): %s' % (' '.join(cmd),
                                                     proc.returncode,
                                                     proc.stdout))
    return proc.returncode, proc.stdout


class Standin(object):
    """A private configuration of the Lustre stand-in."""

    def __init__(self, directory):
        self.directory = directory
        self.conf_path = os.path.join(directory, 'standin.conf')
        parser = configparser.ConfigParser()
        parser['standin'] = {'state_dir': os.path.join(directory, 'state'),
                             'auto_create': 'no'}
        for name, (size, osts, pools) in FILESYSTEMS.items():
            parser['fs:%s' % name] = {'size': size, 'osts': str(osts),
                                      'pools': pools}
        with open(self.conf_path, 'w') as f:
            parser.write(f)
        self.env = dict(os.environ, LUSTRE_STANDIN_CONF=self.conf_path)

    def admin(self, *args):
        return run(STANDIN, '--config', self.conf_path, *args)[1]

    def fault(self, fsname, *args):
        self.admin('fault', fsname, *args)

    def cleanup(self):
        run(STANDIN, '--config', self.conf_path, 'cleanup', check=False)


class LustreFunctionalTestCase(test.TestCase):
    """Drivers on stand-in shares, with guest I/O through qemu-io."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for tool in ('qemu-img', 'qemu-io', 'mount.lustre', 'lfs'):
            if not shutil.which(tool, path='/usr/sbin:/usr/bin:/sbin:/bin'):
                raise AssertionError('%s is missing: run tools/run-tests, '
                                     'which installs qemu-utils and the '
                                     'Lustre stand-in' % tool)
        if os.geteuid() != 0:
            raise AssertionError('functional tests mount filesystems: run '
                                 'them as root')
        cls.tmp_root = tempfile.mkdtemp(prefix='lustre-functional-')
        cls.standin = Standin(cls.tmp_root)
        # mount(8) hands the environment on to mount.lustre.
        os.environ['LUSTRE_STANDIN_CONF'] = cls.standin.conf_path
        try:
            for fsname, subdir in FILESETS:
                cls.standin.admin('mkdir', fsname, subdir)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.standin.cleanup()
        os.environ.pop('LUSTRE_STANDIN_CONF', None)
        shutil.rmtree(cls.tmp_root, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        # Privileged calls (the image format inspector) run in this
        # process, which is root, instead of through a privsep daemon.
        cinder.privsep.sys_admin_pctxt.set_client_mode(False)
        self.addCleanup(cinder.privsep.sys_admin_pctxt.set_client_mode,
                        True)
        self.context = context.get_admin_context()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.override_config('image_conversion_dir',
                             os.path.join(self.tmp, 'conversion'))
        self.override_config('state_path', self.tmp)
        # Cleanups run last first: files go, then every mount under tmp.
        self.addCleanup(self.standin.admin, 'unmount', self.tmp)
        self.shares_file = os.path.join(self.tmp, 'lustre_shares')
        self.write_shares(SHARE1, SHARE2)
        self.driver = self.make_driver()
        self.addCleanup(self.empty_shares)
        # Volume types as an operator defines them.
        self.thin = self.volume_type('thin', **{'provisioning:type': 'thin'})
        self.thick = self.volume_type('thick',
                                      **{'provisioning:type': 'thick'})

    def write_shares(self, *lines):
        with open(self.shares_file, 'w') as f:
            f.write(''.join(line + '\n' for line in lines))

    def make_driver(self, **options):
        configuration = conf.Configuration(None)
        configuration.append_config_values(lustre.lustre_opts)
        configuration.append_config_values(remotefs.nas_opts)
        settings = {
            'lustre_shares_config': self.shares_file,
            'lustre_mount_point_base': os.path.join(self.tmp, 'mnt'),
            'nas_secure_file_operations': 'false',
            'nas_secure_file_permissions': 'false',
            'volume_backend_name': 'lustre',
        }
        settings.update(options)
        for name, value in settings.items():
            self.override_config(name, value)
        driver = lustre.LustreDriver(configuration=configuration,
                                     host='node@lustre')
        driver.do_setup(self.context)
        driver.check_for_setup_error()
        return driver

    def make_backup_driver(self, share=BACKUP_SHARE):
        """A backup driver on a stand-in share: 64 MiB files, uncompressed."""
        self.override_config('backup_lustre_share', share)
        self.override_config('backup_lustre_mount_point_base',
                             os.path.join(self.tmp, 'backup_mount'))
        self.override_config('backup_file_size', 64 * units.Mi)
        self.override_config('backup_compression_algorithm', 'none')
        self.mock_object(volume_utils, 'notify_about_backup_usage')
        return lustre_backup.LustreBackupDriver(self.context)

    def empty_shares(self):
        """Leave the class's filesystems as empty as the test found them."""
        for share in (SHARE1, SHARE2):
            mount_point = self.driver._get_mount_point_for_share(share)
            if os.path.ismount(mount_point):
                for name in self.files(share):
                    path = os.path.join(mount_point, name)
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    else:
                        os.unlink(path)

    # Cinder objects

    def volume_type(self, name, **extra_specs):
        vtype = volume_types.create(self.context, name, extra_specs)
        return objects.VolumeType.get_by_id(self.context, vtype['id'])

    def create_volume(self, size=1, pool='lfs01/cinder', vtype=None,
                      create=True, **fields):
        vtype = vtype or objects.VolumeType.get_by_id(self.context,
                                                      self.vt['id'])
        volume = objects.Volume(
            context=self.context, size=size, status='creating',
            host='node@lustre#%s' % pool if pool else 'node@lustre',
            volume_type_id=vtype.id, attach_status='detached',
            user_id='user', project_id='project', **fields)
        volume.create()
        volume = objects.Volume.get_by_id(self.context, volume.id)
        if create:
            volume.update(self.driver.create_volume(volume))
            volume.status = 'available'
            volume.save()
            self.model(volume)
        return volume

    def snapshot_record(self, volume):
        """A snapshot as Cinder has it before the driver makes it."""
        snapshot = objects.Snapshot(
            context=self.context, volume_id=volume.id, status='creating',
            volume_size=volume.size, user_id='user', project_id='project',
            volume_type_id=volume.volume_type_id)
        snapshot.create()
        return objects.Snapshot.get_by_id(self.context, snapshot.id)

    def create_snapshot(self, volume):
        snapshot = self.snapshot_record(volume)
        self.driver.create_snapshot(snapshot)
        snapshot.status = 'available'
        snapshot.save()
        volume.refresh()
        snapshot.volume.refresh()
        # The snapshot holds what the guest saw when it was taken.
        run('cp', '--sparse=always', self.model(volume),
            self.model_path(snapshot.id))
        return snapshot

    # The guest's view of a volume

    def model_path(self, key):
        return os.path.join(self.tmp, 'model-%s' % key)

    def model(self, volume):
        """The raw image the guest should see, kept sparse."""
        path = self.model_path(volume.id)
        if not os.path.exists(path):
            with open(path, 'wb') as f:
                f.truncate(volume.size * units.Gi)
        return path

    def attach(self, volume):
        """What a hypervisor gets: the volume's file and its format."""
        volume.refresh()
        data = self.driver.initialize_connection(volume, {})['data']
        mount_point = self.driver._get_mount_point_for_share(data['export'])
        path = os.path.join(mount_point, data['name'])
        self.assertEqual(path, data['device_path'])
        return path, data['format']

    def guest_write(self, volume, offset, length, pattern):
        path, fmt = self.attach(volume)
        run('qemu-io', '-f', fmt, '-c',
            'write -P %d %d %d' % (pattern, offset, length), path)
        with open(self.model(volume), 'r+b') as f:
            f.seek(offset)
            f.write(bytes([pattern]) * length)

    def guest_writes_qcow2_header(self, volume, backing_file, size):
        """The guest writes a qcow2 header, backed by a host file, at 0.

        :returns: (path, format) of the attached volume
        """
        evil = os.path.join(self.tmp, 'evil.qcow2')
        run('qemu-img', 'create', '-f', 'qcow2', '-F', 'raw', '-b',
            backing_file, evil, size)
        path, fmt = self.attach(volume)
        with open(evil, 'rb') as f:
            header = f.read()
        for target in (path, self.model(volume)):
            with open(target, 'r+b') as f:
                f.write(header)
        return path, fmt

    def assertGuestSees(self, volume, model=None):
        """The guest reads exactly the model: every byte, and the size."""
        path, fmt = self.attach(volume)
        _status, out = run('qemu-img', 'info', '-f', fmt, '--output=json',
                           '--force-share', path)
        self.assertEqual(volume.size * units.Gi,
                         json.loads(out)['virtual-size'], path)
        status, out = run('qemu-img', 'compare', '-f', fmt, '-F', 'raw',
                          path, model or self.model(volume), check=False)
        self.assertEqual(0, status, out)

    def bytes_lost(self, path, fmt, model_path):
        """Bytes a guest of the file would see that differ from the model.

        Counted by MiB: a MiB that differs counts whole.
        """
        status, _out = run('qemu-img', 'compare', '-f', fmt, '-F', 'raw',
                           path, model_path, check=False)
        if status == 0:
            return 0
        lost = 0
        raw = os.path.join(self.tmp, 'seen.raw')
        run('qemu-img', 'convert', '-f', fmt, '-O', 'raw', path, raw)
        with open(raw, 'rb') as seen, open(model_path, 'rb') as want:
            while True:
                a, b = seen.read(units.Mi), want.read(units.Mi)
                if not a and not b:
                    break
                if a != b:
                    lost += max(len(a), len(b))
        os.unlink(raw)
        return lost

    def files(self, share=SHARE1):
        """The files on a share (the stand-in's own files aside)."""
        mount_point = self.driver._get_mount_point_for_share(share)
        return sorted(name for name in os.listdir(mount_point)
                      if name not in ('lost+found',
                                      '.cinderSecureEnvIndicator'))
