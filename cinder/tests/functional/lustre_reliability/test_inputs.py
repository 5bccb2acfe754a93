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

"""Bad configuration and hostile images: each refused, clearly.

Every case checks that the error is the specific one an operator can act on
(naming the line, option, spec or reason) and that nothing is left behind.
Hostile images all point at a sentinel file outside the shares; after each
case no file on a share or in an image holds the sentinel's bytes.
"""

import os

import ddt
from oslo_utils import units

from cinder.backup.drivers import lustre as lustre_backup
from cinder import exception
from cinder.tests.functional.lustre import base
from cinder.tests.functional.lustre_reliability import report
from cinder.volume.drivers import lustre_client

MI = units.Mi
CONFIG_ERRORS = (exception.InvalidConfigurationValue,
                 exception.VolumeDriverException)


class FakeImageService(object):
    """Images from local files, as Glance would hand them over."""

    def __init__(self):
        self.images = {}
        self.uploads = {}
        self.temp_images = None

    def add(self, image_id, path, disk_format):
        self.images[image_id] = {
            'id': image_id, 'disk_format': disk_format,
            'container_format': 'bare', 'status': 'active',
            'size': os.path.getsize(path), 'properties': {}, 'path': path}

    def show(self, context, image_id):
        return dict(self.images[image_id])

    def download(self, context, image_id, data=None, **kwargs):
        """Write the image into ``data``, or return its chunks, as Glance."""
        chunks = self._chunks(self.images[image_id]['path'])
        if data is None:
            return chunks
        for chunk in chunks:
            data.write(chunk)

    @staticmethod
    def _chunks(path):
        with open(path, 'rb') as f:
            while True:
                chunk = f.read(64 * units.Ki)
                if not chunk:
                    break
                yield chunk

    def update(self, context, image_id, metadata, data=None, **kwargs):
        self.uploads[image_id] = data.read()
        return metadata


@ddt.ddt
class BadConfigurationTestCase(base.LustreFunctionalTestCase):

    def mounts(self):
        with open('/proc/mounts') as mounts:
            return [line.split()[1] for line in mounts
                    if line.split()[1].startswith(self.tmp + '/')]

    def refused(self, item, errors, make, *fragments):
        exc = self.assertRaises(errors, make)
        for fragment in fragments:
            self.assertIn(fragment, str(exc), item)
        report.record('input', item, refused=True, error=str(exc)[:200])
        return exc

    @ddt.data(
        ('%s:/' % base.MGS, 'line 1', 'fsname'),
        ('%s/lfs01' % base.MGS, 'line 1', 'expected MGSNID'),
        ('10.0.0.1@@tcp:/lfs01', 'line 1', 'not a valid MGS NID'),
        ('[::1]:/lfs01', 'line 1', 'not a valid MGS NID'),
        ('10.0.0.1@tcp:/lfs01/../etc', 'line 1', "'..'"),
        ('10.0.0.1@tcp:/lfs01/sub;rm', 'line 1', 'unsupported character'),
        ('10.0.0.1@tcp:/lfs 01', 'line 1', "unexpected '01'"),
        ('10.0.0.1@tcp:/toolongfs', 'line 1', 'not a valid Lustre fsname'),
        ('10.0.0.1@tcp:/lfs01 -o bogus', 'line 1', "'bogus'"),
        ('10.0.0.1@tcp:/lfs01 --bind', 'line 1', "unexpected '--bind'"),
        ('10.0.0.1@tcp:/lfs01 -o noflock', 'line 1', '10.0.0.1@tcp:/lfs01',
         'noflock'),
        ('%s\n%s' % (base.SHARE1, base.SHARE1), 'line 2', 'overlaps'),
        ('%s\n10.0.0.1@tcp0:/lfs01/cinder' % base.SHARE1, 'line 2',
         'overlaps'),
        ('%s:/lfs01\n%s' % (base.MGS, base.SHARE1), 'line 2', 'overlaps'),
        ('%s\n10.9.9.9@tcp:/lfs01/cinder' % base.SHARE1, 'same name'),
        ('# nothing but a comment', 'no Lustre share is listed'),
    )
    def test_malformed_shares_file(self, case):
        lines, fragments = case[0], case[1:]
        self.write_shares(lines)
        before = self.mounts()
        self.refused('shares file: %r' % lines, CONFIG_ERRORS,
                     self.make_driver, *fragments)
        self.assertEqual(before, self.mounts())

    def test_missing_shares_file(self):
        self.refused('missing shares file', CONFIG_ERRORS,
                     lambda: self.make_driver(
                         lustre_shares_config='/nonexistent/shares'),
                     'No such file')

    def test_shares_file_that_is_a_directory(self):
        self.refused('shares file is a directory', CONFIG_ERRORS,
                     lambda: self.make_driver(lustre_shares_config=self.tmp),
                     'cannot read')

    def test_mount_point_base_not_creatable(self):
        blocker = os.path.join(self.tmp, 'file')
        open(blocker, 'w').close()
        self.refused('mount point base under a file', CONFIG_ERRORS,
                     lambda: self.make_driver(
                         lustre_mount_point_base=os.path.join(blocker, 'm')),
                     'lustre_mount_point_base')

    def test_share_that_cannot_be_mounted(self):
        self.write_shares('%s:/lfs09' % base.MGS)
        self.refused('unknown filesystem', CONFIG_ERRORS, self.make_driver,
                     'none of the 1 shares')

    def test_fileset_that_does_not_exist(self):
        self.write_shares('%s:/lfs01/nowhere' % base.MGS, base.SHARE2)
        driver = self.make_driver()
        exc = self.assertRaises(lustre_client.LustreException,
                                driver._ensure_share_mounted,
                                '%s:/lfs01/nowhere' % base.MGS)
        self.assertIn('No such file or directory', str(exc))
        report.record('input', 'missing fileset', refused=True)

    @ddt.data(('lustre_mount_options', 'flock,bogus', 'bogus'),
              ('lustre_mount_options', 'noflock', 'noflock'),
              ('lustre_stripe_size', '100K', 'lustre_stripe_size'),
              ('lustre_stripe_size', '8G', 'at most 4G'),
              ('lustre_ost_pool', 'bad pool', 'lustre_ost_pool'),
              ('lustre_layout', '-E 64M -c 2', 'end of the file'),
              ('lustre_layout', '-E 1G -E 64M -E -1', 'component 2'),
              ('nas_secure_file_operations', 'maybe', 'maybe'))
    @ddt.unpack
    def test_bad_option(self, option, value, fragment):
        self.refused('%s=%s' % (option, value), CONFIG_ERRORS,
                     lambda: self.make_driver(**{option: value}), fragment)

    @ddt.data(('lustre_stripe_count', 5000), ('lustre_mount_attempts', 0))
    @ddt.unpack
    def test_option_out_of_range(self, option, value):
        self.refused('%s=%s' % (option, value), ValueError,
                     lambda: self.override_config(option, value))

    @ddt.data(('backup_lustre_share', None, 'backup_lustre_share'),
              ('backup_lustre_share', 'backup-server:/export/../x', "'..'"),
              ('backup_lustre_mount_options', 'flock,zz', "'zz'"),
              ('backup_lustre_stripe_size', '3K', 'multiple of 64K'),
              ('backup_lustre_ost_pool', 'no/pool', 'not a valid OST pool'))
    @ddt.unpack
    def test_bad_backup_option(self, option, value, fragment):
        self.override_config('backup_lustre_share', base.BACKUP_SHARE)
        self.override_config('backup_lustre_mount_point_base',
                             os.path.join(self.tmp, 'backup_mount'))
        self.override_config(option, value)
        self.refused('%s=%s' % (option, value), CONFIG_ERRORS,
                     lambda: lustre_backup.LustreBackupDriver(self.context),
                     fragment)

    def test_unmountable_backup_share(self):
        self.override_config('backup_lustre_share', '%s:/lfs09' % base.MGS)
        self.override_config('backup_lustre_mount_point_base',
                             os.path.join(self.tmp, 'backup_mount'))
        self.refused('unmountable backup share',
                     exception.BackupDriverException,
                     lambda: lustre_backup.LustreBackupDriver(self.context),
                     'after 3 attempts', 'No such file or directory')

    @ddt.data(({'lustre:stripe_count': 'all'}, 'lustre:stripe_count'),
              ({'lustre:stripe_size': '1K'}, 'lustre:stripe_size'),
              ({'lustre:pool': 'x' * 20}, 'lustre:pool'),
              ({'lustre:pool': 'tape'}, "'lfs01.tape' does not exist"),
              ({'lustre:layout': '-E 64M'}, 'lustre:layout'),
              ({'lustre:layout': '-E -1', 'lustre:stripe_count': '2'},
               'cannot be combined'))
    @ddt.unpack
    def test_bad_volume_type(self, specs, fragment):
        vtype = self.volume_type('bad-%d' % len(str(specs)), **specs)
        volume = self.create_volume(vtype=vtype, create=False)
        self.refused('volume type %s' % specs,
                     (exception.InvalidVolumeType,
                      lustre_client.LustreException),
                     lambda: self.driver.create_volume(volume), fragment)
        self.assertEqual([], self.files())


@ddt.ddt
class HostileImageTestCase(base.LustreFunctionalTestCase):

    def setUp(self):
        super().setUp()
        # The sentinel is what an attacker wants to read.
        self.sentinel = os.path.join(self.tmp, 'sentinel')
        self.secret = os.urandom(MI)
        with open(self.sentinel, 'wb') as f:
            f.write(self.secret)
        self.images = FakeImageService()
        self.mount_point = self.driver._get_mount_point_for_share(
            base.SHARE1)

    def tearDown(self):
        self.assertEqual([], self.leaks())
        super().tearDown()

    def leaks(self):
        """Files on the share (and uploads) that hold the sentinel's data."""
        marker = self.secret[:64]
        found = []
        for name in os.listdir(self.mount_point):
            path = os.path.join(self.mount_point, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, 'rb') as f:
                    if marker in f.read():
                        found.append(path)
        found += [image for image, data in self.images.uploads.items()
                  if marker in data]
        return found

    def image(self, name, *options, size='1G', disk_format='qcow2'):
        path = os.path.join(self.tmp, name)
        base.run('qemu-img', 'create', *options, path, size)
        self.images.add(name, path, disk_format)
        return name

    def refused_image(self, item, image_id, errors, *fragments):
        volume = self.create_volume(vtype=self.thin)
        exc = self.assertRaises(errors, self.driver.copy_image_to_volume,
                                self.context, volume, self.images, image_id)
        for fragment in fragments:
            self.assertIn(fragment, str(exc))
        report.record('input', item, refused=True, error=str(exc)[:200],
                      leaks=len(self.leaks()))

    def test_backing_file_outside_the_share(self):
        image = self.image('outside', '-f', 'qcow2', '-F', 'raw', '-b',
                           self.sentinel)
        self.refused_image('image backed by a file outside the share',
                           image, exception.ImageUnacceptable,
                           'with a backing file')

    def test_backing_file_named_like_another_volume(self):
        other = self.create_volume(vtype=self.thin)
        self.guest_write(other, 0, MI, 0x5a)
        image = self.image('tenant', '-f', 'qcow2', '-F', 'raw', '-b',
                           self.driver.local_path(other))
        self.refused_image('image backed by another tenant volume', image,
                           exception.ImageUnacceptable,
                           'with a backing file')
        self.assertGuestSees(other)

    def test_data_file(self):
        image = self.image('datafile', '-f', 'qcow2', '-o',
                           'data_file=%s,data_file_raw=on' % self.sentinel,
                           size='1M')
        self.refused_image('qcow2 image with a data-file', image,
                           exception.ImageUnacceptable,
                           'with an external data file')

    def test_backing_chain_loop(self):
        path = os.path.join(self.tmp, 'loop')
        base.run('qemu-img', 'create', '-f', 'qcow2', path, '1G')
        base.run('qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', 'qcow2',
                 '-b', path, path)
        self.images.add('loop', path, 'qcow2')
        self.refused_image('qcow2 image whose backing file is itself',
                           'loop', exception.ImageUnacceptable,
                           'with a backing file')

    def test_image_bigger_than_the_volume(self):
        image = self.image('big', '-f', 'qcow2', size='3G')
        self.refused_image('image larger than the volume', image,
                           exception.ImageUnacceptable, "doesn't fit")

    def test_vmdk_with_an_extent_outside(self):
        path = os.path.join(self.tmp, 'flat.vmdk')
        with open(path, 'w') as f:
            f.write('# Disk DescriptorFile\nversion=1\nCID=fffffffe\n'
                    'parentCID=ffffffff\ncreateType="monolithicFlat"\n'
                    'RW 2048 FLAT "%s" 0\n' % self.sentinel)
        self.images.add('vmdk', path, 'vmdk')
        self.refused_image('vmdk whose extent is outside the share', 'vmdk',
                           exception.ImageUnacceptable)

    def test_raw_image_holding_a_qcow2_header(self):
        evil = os.path.join(self.tmp, 'evil.qcow2')
        base.run('qemu-img', 'create', '-f', 'qcow2', '-F', 'raw', '-b',
                 self.sentinel, evil, '512M')
        self.images.add('rawevil', evil, 'raw')
        self.refused_image('raw image holding a qcow2 header with a '
                           'backing file', 'rawevil',
                           exception.ImageUnacceptable, 'with a backing file')

    def test_guest_written_qcow2_header_stays_data(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_writes_qcow2_header(volume, self.sentinel, '512M')
        # Snapshots, clones and uploads see the header as data, never
        # follow it to the sentinel.
        self.create_snapshot(volume)
        self.assertGuestSees(volume)
        clone = self.create_volume(vtype=self.thin, create=False)
        clone.update(self.driver.create_cloned_volume(clone, volume))
        clone.save()
        self.assertGuestSees(clone, self.model(volume))
        self.driver.copy_volume_to_image(
            self.context, volume, self.images,
            {'id': 'upload', 'disk_format': 'qcow2',
             'container_format': 'bare'})
        out = os.path.join(self.tmp, 'uploaded.qcow2')
        with open(out, 'wb') as f:
            f.write(self.images.uploads['upload'])
        status, _out = base.run('qemu-img', 'compare', '-f', 'qcow2', '-F',
                                'raw', out, self.model(volume), check=False)
        self.assertEqual(0, status)
        report.record('input', 'guest-written qcow2 header in a raw volume',
                      refused=True, leaks=len(self.leaks()))

    @ddt.data(('backing', lambda s: ['-F', 'raw', '-b', s]),
              ('data-file', lambda s: ['-o', 'data_file=%s' % s]))
    @ddt.unpack
    def test_manage_refuses_hostile_file(self, kind, options):
        path = os.path.join(self.mount_point, 'hostile.img')
        base.run('qemu-img', 'create', '-f', 'qcow2',
                 *options(self.sentinel), path, '1M')
        volume = self.create_volume(vtype=self.thin, create=False)
        exc = self.assertRaises(
            exception.ManageExistingInvalidReference,
            self.driver.manage_existing, volume,
            {'source-name': '%s/hostile.img' % base.SHARE1})
        self.assertTrue(os.path.exists(path))
        report.record('input', 'manage a qcow2 file with a %s' % kind,
                      refused=True, error=str(exc)[:200])
        os.unlink(path)
