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

"""Unit tests for the parallel stages of the backup pipeline.

Chunks of a real temporary file go through a BackupRun whose objects are
kept in memory; writers that wait on events make jobs finish in the order
a test wants, without any timing.
"""

import bz2
import hashlib
import os
import threading
import zlib

import ddt
import fixtures
import zstd

from cinder.backup import pipeline
from cinder.tests.unit import test

BLOCK = 4096
CHUNK = 256 * 1024


class Writer(object):

    def __init__(self, store, name):
        self.store = store
        self.name = name
        store.objects[name] = bytearray()
        hold = store.hold.get(name[:-4])  # per job: "p-partNNNNN"
        if hold is not None:
            hold.wait()

    def write(self, data):
        if self.name[:-4] in self.store.fail:
            raise OSError('disk full')
        self.store.objects[self.name] += data

    def close(self):
        pass


class Store(object):
    """Objects in memory; a job's writer can be held or made to fail."""

    prefix = 'p'

    def __init__(self):
        self.objects = {}
        self.hold = {}
        self.fail = set()

    def open_object(self, name):
        return Writer(self, name)

    def remove_object(self, name):
        self.objects.pop(name, None)

    def rename_object(self, old, new):
        self.objects[new] = self.objects.pop(old)


@ddt.ddt
class BackupRunTestCase(test.TestCase):

    def setUp(self):
        super().setUp()
        self.path = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'volume')
        self.store = Store()

    def make_file(self, chunks):
        with open(self.path, 'wb') as f:
            for _ in range(chunks):
                f.write(os.urandom(CHUNK))
        self.file = open(self.path, 'rb')
        self.addCleanup(self.file.close)

    def run_for(self, threads, compression=None):
        reader = pipeline.Reader(self.file, BLOCK, piece_size=64 * 1024)
        run = pipeline.BackupRun(
            self.store, reader, threads, compression or 'none',
            {'zlib': zlib, 'zstd': zstd}.get(compression), 8 * BLOCK,
            lambda length: hashlib.sha256(bytes(length)).hexdigest())
        self.addCleanup(run.abort)
        return run

    def submit_all(self, run, chunks):
        for index in range(chunks):
            run.submit(pipeline.Chunk(index * CHUNK, CHUNK), True)

    @ddt.data(1, 2, 4)
    def test_jobs_are_handed_back_in_volume_order(self, threads):
        self.make_file(4)
        # The first chunk's writer waits until the last chunk has started:
        # with several threads the jobs finish out of order.
        last_started = threading.Event()
        if threads >= 4:
            self.store.hold['p-part00001'] = last_started
        run = self.run_for(threads)
        self.submit_all(run, 3)
        run.submit(pipeline.Chunk(3 * CHUNK, CHUNK), True)
        last_started.set()
        jobs = list(run.finished(wait=True))
        self.assertEqual([0, CHUNK, 2 * CHUNK, 3 * CHUNK],
                         [job.objects[0][1] for job in jobs])
        with open(self.path, 'rb') as f:
            data = f.read()
        shas = [sha for job in jobs for sha in job.shas]
        self.assertEqual(pipeline.hash_blocks(data, BLOCK), shas)
        for job in jobs:
            name, offset, length, algorithm, md5 = job.objects[0]
            self.assertEqual(data[offset:offset + length],
                             self.store.objects[name])
            self.assertEqual(hashlib.md5(data[offset:offset + length],
                                         usedforsecurity=False).hexdigest(),
                             md5)
            self.assertEqual('none', algorithm)

    def held_run(self, threads, chunks=3):
        """A run of ``chunks`` jobs whose first writer waits for release."""
        self.make_file(chunks)
        release = threading.Event()
        self.store.hold['p-part00001'] = release
        run = self.run_for(threads)
        self.submit_all(run, chunks)
        return run, release

    def test_window_is_bounded(self):
        run, release = self.held_run(2)
        self.assertFalse(run.has_room())
        self.assertEqual([], list(run.finished()))
        release.set()
        run.wait_for_room()
        self.assertGreaterEqual(len(list(run.finished())), 1)
        self.assertTrue(run.has_room())

    def test_worker_error_propagates_and_leaves_no_object(self):
        self.make_file(3)
        self.store.fail.add('p-part00002')
        run = self.run_for(2)
        self.submit_all(run, 3)
        done = run.finished(wait=True)
        first = next(done)
        self.assertEqual(0, first.objects[0][1])
        self.assertRaises(OSError, next, done)
        self.assertNotIn('p-part00002-000', self.store.objects)
        run.abort()
        # Only the object handed back before the error is left, for
        # delete_backup to remove with the backup.
        self.assertEqual(['p-part00001-000'], list(self.store.objects))

    def test_cancel_stops_the_jobs_and_removes_their_objects(self):
        run, release = self.held_run(1)
        run.cancelled.set()
        release.set()
        run.wait_all()
        self.assertRaises(pipeline.Cancelled,
                          lambda: list(run.finished(wait=True)))
        run.abort()
        self.assertEqual({}, self.store.objects)

    def test_zero_blocks_and_holes_are_not_stored(self):
        with open(self.path, 'wb') as f:
            f.truncate(4 * CHUNK)
            f.seek(CHUNK + 3 * BLOCK)
            f.write(os.urandom(2 * BLOCK) + bytes(20 * BLOCK) +
                    os.urandom(BLOCK))
        self.file = open(self.path, 'rb')
        self.addCleanup(self.file.close)
        run = self.run_for(2)
        self.submit_all(run, 4)
        jobs = list(run.finished(wait=True))
        stored = [(o[1], o[2]) for job in jobs for o in job.objects]
        # The 20 zero blocks are a gap of more than 8 blocks: two objects.
        self.assertEqual([(CHUNK + 3 * BLOCK, 2 * BLOCK),
                          (CHUNK + 25 * BLOCK, BLOCK)], stored)
        self.assertEqual(4 * CHUNK // BLOCK,
                         sum(len(job.shas) for job in jobs))

    @ddt.data('zlib', 'zstd')
    def test_compressed_objects_decompress_to_the_data(self, compression):
        with open(self.path, 'wb') as f:
            f.write(b'compressible ' * (CHUNK // 13 + 1))
        self.file = open(self.path, 'rb')
        self.addCleanup(self.file.close)
        run = self.run_for(2, compression)
        run.submit(pipeline.Chunk(0, CHUNK), True)
        (job,) = list(run.finished(wait=True))
        name, _offset, length, algorithm, _md5 = job.objects[0]
        self.assertEqual(compression, algorithm)
        stored = bytes(self.store.objects[name])
        self.assertLess(len(stored), length)
        module = zlib if compression == 'zlib' else zstd
        with open(self.path, 'rb') as f:
            self.assertEqual(f.read(CHUNK), module.decompress(stored))

    def test_incompressible_zlib_object_is_stored_plain(self):
        self.make_file(1)
        run = self.run_for(1, 'zlib')
        run.submit(pipeline.Chunk(0, CHUNK), True)
        (job,) = list(run.finished(wait=True))
        name, _offset, _length, algorithm, _md5 = job.objects[0]
        self.assertEqual('none', algorithm)
        with open(self.path, 'rb') as f:
            self.assertEqual(f.read(), self.store.objects[name])

    def test_changed_extent_is_stored_whole(self):
        with open(self.path, 'wb') as f:
            f.truncate(CHUNK)
        self.file = open(self.path, 'rb')
        self.addCleanup(self.file.close)
        run = self.run_for(1)
        run.submit(pipeline.Chunk(0, CHUNK)[BLOCK:3 * BLOCK], False)
        (job,) = list(run.finished(wait=True))
        self.assertEqual([], job.shas)
        name, offset, length, _algorithm, _md5 = job.objects[0]
        self.assertEqual((BLOCK, 2 * BLOCK), (offset, length))
        self.assertEqual(bytes(2 * BLOCK), self.store.objects[name])


@ddt.ddt
class StreamTestCase(test.TestCase):

    def test_zstd_frames_are_split_as_they_come(self):
        frames = [zstd.compress(os.urandom(1000) + bytes(70000)),
                  zstd.compress(b'x' * 300000), zstd.compress(b'')]
        stream = b''.join(frames)
        splitter = pipeline.ZstdFrames()
        found = []
        for pos in range(0, len(stream), 777):
            found += list(splitter.feed(stream[pos:pos + 777]))
        self.assertEqual(frames, found)
        self.assertEqual(b'', bytes(splitter.buf))

    @ddt.data(('zlib', zlib), ('bz2', bz2), ('zstd', zstd), ('none', None))
    @ddt.unpack
    def test_decompressed_in_bounded_pieces(self, algorithm, module):
        data = bytes(8 * 1024 * 1024) + os.urandom(1000)
        if module is zstd:
            stored = b''.join(zstd.compress(data[pos:pos + 1024 * 1024])
                              for pos in range(0, len(data), 1024 * 1024))
        else:
            stored = module.compress(data) if module else data
        pieces = [stored[pos:pos + 65536]
                  for pos in range(0, len(stored), 65536)]
        out = list(pipeline.decompressed(algorithm, module, pieces,
                                         limit=1024 * 1024))
        self.assertEqual(data, b''.join(out))
        self.assertLessEqual(max(len(piece) for piece in out), 1024 * 1024)

    def test_restore_object_skips_zeros_of_a_new_volume(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'v')
        data = os.urandom(1024 * 1024) + bytes(2 * 1024 * 1024) + b'end'
        with open(path, 'wb') as f:
            restored = pipeline.restore_object(
                iter([zlib.compress(data)]), 'zlib', zlib, f.fileno(), 4096,
                True)
        self.assertEqual(len(data), restored)
        with open(path, 'rb') as f:
            self.assertEqual(bytes(4096) + data, f.read())
        # The zero MiBs were not written: they are a hole.
        self.assertLess(os.stat(path).st_blocks * 512, 3 * 1024 * 1024)

    def test_restore_object_error_while_reading_propagates(self):
        def pieces():
            yield zlib.compress(b'abc')[:5]
            raise OSError('object gone')

        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'v')
        with open(path, 'wb') as f:
            self.assertRaises(OSError, pipeline.restore_object, pieces(),
                              'zlib', zlib, f.fileno(), 0, False)

    def test_read_ahead_raises_the_producer_error(self):
        def items():
            yield 1
            raise OSError('read failed')

        ahead = pipeline.read_ahead(items())
        self.assertEqual(1, next(ahead))
        self.assertRaises(OSError, next, ahead)

    def test_background_raises_the_error_of_its_function(self):
        done = []

        def write(item):
            if item == 2:
                raise OSError('write failed')
            done.append(item)

        background = pipeline.Background(write, depth=1)
        background.put(1)
        background.put(2)
        # The failure surfaces at the latest when the writes are awaited.
        self.assertRaises(OSError, lambda: [background.put(3),
                                            background.close()])
        self.assertEqual([1], done)

    def test_background_abort_stops_its_thread(self):
        background = pipeline.Background(lambda item: None)
        background.put(1)
        background.abort()
        self.assertFalse(background._thread.is_alive())
