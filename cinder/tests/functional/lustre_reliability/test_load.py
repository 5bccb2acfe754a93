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

"""Load: many operations at once on one share, many volumes on a share.

The driver's locks are real here (tooz, file backend): concurrent
operations on one volume serialize, operations on different volumes run
side by side.  Afterwards no file is lost or duplicated, every guest sees
its data, and no lock is left held.
"""

import concurrent.futures
import os
import time

from oslo_utils import units

from cinder import coordination
from cinder.tests.functional.lustre import base
from cinder.tests.functional.lustre_reliability import report

MI = units.Mi


class LoadTestCase(base.LustreFunctionalTestCase):

    # Take the driver's coordination locks for real.
    MOCK_TOOZ = False

    def test_fifty_parallel_creates_snapshots_and_deletes(self):
        doomed = [self.create_volume(vtype=self.thin) for _i in range(10)]
        snapped = [self.create_volume(vtype=self.thin) for _i in range(10)]
        for number, volume in enumerate(snapped):
            self.guest_write(volume, number * MI, MI, number + 1)
        new = [self.create_volume(vtype=self.thin, create=False)
               for _i in range(20)]
        snapshots = [self.snapshot_record(volume)
                     for volume in snapped for _i in (0, 1)]
        jobs = ([(self.driver.create_volume, volume) for volume in new] +
                [(self.driver.create_snapshot, snapshot)
                 for snapshot in snapshots] +
                [(self.driver.delete_volume, volume) for volume in doomed])
        self.assertEqual(50, len(jobs))
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            futures = [pool.submit(job, arg) for job, arg in jobs]
            errors = [f.exception() for f in futures if f.exception()]
        took = time.monotonic() - start
        self.assertEqual([], errors)
        for volume in snapped:
            volume.refresh()
            snap_info = self.driver._read_info_file(
                self.driver._local_path_volume_info(volume))
            self.assertEqual(3, len(snap_info))
            self.assertGuestSees(volume)
        expected = sorted(
            [v.name for v in new] + [v.name for v in snapped] +
            ['%s.info' % v.name for v in snapped] +
            ['%s.%s' % (s.volume.name, s.id) for s in snapshots])
        self.assertEqual(expected, self.files())
        # Every lock was released: each can be taken at once again.
        names = ['lustre-%s' % v.id for v in doomed + snapped + new]
        held = 0
        for name in names:
            lock = coordination.COORDINATOR.get_lock(name)
            if lock.acquire(blocking=False):
                lock.release()
            else:
                held += 1
        report.record('load', '50 creates, snapshots and deletes at once',
                      seconds=round(took, 1), errors=len(errors),
                      locks_left_held=held, files=len(expected))
        self.assertEqual(0, held)

    def test_a_thousand_volumes_on_a_share(self):
        def stats_seconds():
            start = time.monotonic()
            self.driver.get_volume_stats(refresh=True)
            return time.monotonic() - start

        few = min(stats_seconds() for _i in range(5))
        volumes = []
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for volume in pool.map(
                    lambda _i: self.create_volume(vtype=self.thin),
                    range(1000)):
                volumes.append(volume)
        created = time.monotonic() - start
        many = min(stats_seconds() for _i in range(5))
        self.assertEqual(sorted(v.name for v in volumes), self.files())
        found = self.driver.get_manageable_volumes(
            volumes, None, 2000, 0, ['reference'], ['asc'])
        self.assertEqual(1000, len([v for v in found if v['cinder_id']]))
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(self.driver.delete_volume, volumes))
        deleted = time.monotonic() - start
        self.assertEqual([], self.files())
        report.record('load', '1000 volumes on one share',
                      create_seconds=round(created, 1),
                      delete_seconds=round(deleted, 1),
                      stats_ms_with_none=round(few * 1000, 1),
                      stats_ms_with_1000=round(many * 1000, 1))
        # Stats do not walk the share: 1000 volumes cost about nothing.
        self.assertLess(many, few + 0.25)

    def test_permissions(self):
        for secure in ('true', 'false'):
            self.driver = self.make_driver(
                nas_secure_file_permissions=secure,
                nas_secure_file_operations=secure)
            self.assertEqual(secure == 'false', self.driver._execute_as_root)
            volume = self.create_volume(vtype=self.thin)
            self.guest_write(volume, 0, MI, 0x61)
            snapshot = self.snapshot_record(volume)
            self.driver.create_snapshot(snapshot)
            modes = {path: os.stat(path).st_mode & 0o777 for path in (
                self.driver.local_path(volume),
                self.driver._get_new_snap_path(snapshot),
                self.driver._local_path_volume_info(volume))}
            world = [path for path, mode in modes.items() if mode & 0o007]
            report.record('load', 'file permissions, secure=%s' % secure,
                          world_accessible=len(world))
            self.assertEqual([], world)
            self.assertEqual({0o660}, set(modes.values()))
