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

"""Multiattach volumes on stand-in shares: raw files, whatever the backend.

The backend makes thin volumes qcow2 files (lustre_qcow2_volumes), as the
project's stack does; the files of a multiattach type are raw all the same,
which the file itself shows to a probing qemu-img.
"""

import json
import os

from oslo_utils import units

from cinder.tests.functional.lustre import base
from cinder.volume import volume_types

MI = units.Mi


class LustreMultiattachTestCase(base.LustreFunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.driver = self.make_driver(lustre_qcow2_volumes=True)
        self.shared = self.volume_type(
            'shared', multiattach='<is> True',
            **{'provisioning:type': 'thin'})

    def assertRawFile(self, volume):
        """The volume's file is raw by its records and by its bytes."""
        path = self.driver.local_path(volume)
        self.assertEqual('raw', volume.admin_metadata['format'])
        _status, out = base.run('qemu-img', 'info', '--output=json',
                                '--force-share', path)
        self.assertEqual('raw', json.loads(out)['format'])
        self.assertEqual((path, 'raw'), self.attach(volume))

    def allocated(self, volume):
        return os.stat(self.driver.local_path(volume)).st_blocks * 512

    def test_every_pool_reports_multiattach(self):
        stats = self.driver.get_volume_stats(refresh=True)
        self.assertEqual([True, True],
                         [pool['multiattach'] for pool in stats['pools']])

    def test_thin_volume_is_a_sparse_raw_file(self):
        volume = self.create_volume(vtype=self.shared, multiattach=True)
        self.assertRawFile(volume)
        self.assertLess(self.allocated(volume), MI)
        self.guest_write(volume, units.Gi - MI, MI, 0x51)
        self.assertGuestSees(volume)

    def test_clone_of_a_qcow2_volume_with_snapshots_is_raw(self):
        volume = self.create_volume(vtype=self.thin)
        self.assertEqual('qcow2', volume.admin_metadata['format'])
        self.guest_write(volume, 0, MI, 0x52)
        self.create_snapshot(volume)
        self.guest_write(volume, 10 * MI, MI, 0x53)
        clone = self.create_volume(vtype=self.shared, multiattach=True,
                                   create=False)
        clone.update(self.driver.create_cloned_volume(clone, volume))
        clone.save()
        self.assertRawFile(clone)
        self.assertGuestSees(clone, self.model(volume))

    def test_retype_of_a_qcow2_volume_makes_it_raw(self):
        volume = self.create_volume(vtype=self.thin)
        self.guest_write(volume, 0, 3 * MI, 0x54)
        self.guest_write(volume, units.Gi - MI, MI, 0x55)
        diff, _same = volume_types.volume_types_diff(
            self.context, self.thin.id, self.shared.id)
        # Cinder's diff lists the specs both types share, too.
        self.assertEqual({'multiattach': (None, '<is> True'),
                          'provisioning:type': ('thin', 'thin')},
                         diff['extra_specs'])
        volume.previous_status = 'available'
        volume.status = 'retyping'
        volume.save()
        self.assertEqual((True, None), self.driver.retype(
            self.context, volume, self.shared, diff,
            {'host': 'node@lustre#lfs01/cinder'}))
        # What the volume manager then records.
        volume.update({'volume_type_id': self.shared.id,
                       'multiattach': True, 'status': 'available'})
        volume.save()
        self.assertRawFile(volume)
        # The holes stayed holes; nothing was left beside the file.
        self.assertLess(self.allocated(volume), 8 * MI)
        self.assertEqual([volume.name], self.files())
        self.assertGuestSees(volume)
