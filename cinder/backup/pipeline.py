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

"""Parallel, bounded-memory stages of a chunked backup and restore.

Cinder's chunked format asks for a SHA-256 of every block of a volume and
an MD5 of every stored object.  ``ChunkedBackupDriver.backup`` computes
them, compresses and writes one chunk after the other on one core, with
the whole chunk (``backup_file_size``, 1.86 GiB by default) in memory.

How this module fits, without changing Cinder's loop: the driver hands
``ChunkedBackupDriver.backup`` a :class:`Source` in place of the volume
file.  Its ``read`` returns a :class:`Chunk`, a range of the volume that
is not read yet; the driver's ``_calculate_sha`` and ``_backup_chunk``
hooks pass chunks to a :class:`BackupRun`, which processes several chunks
at once on native threads and hands the finished objects and hashes back,
in volume order, for Cinder's metadata.  Each chunk is processed as a
stream of pieces of at most :data:`PIECE_SIZE`:

* read ahead with ``pread`` on a thread of its own (holes skipped with
  SEEK_DATA/SEEK_HOLE);
* SHA-256 of its blocks on the pool;
* all-zero blocks cut out of full backups (gaps under ``min_gap`` stay);
* compressed (zlib and bz2 as one stream per object, zstd as one frame
  per piece, on the pool) and MD5, in order, on the chunk's thread;
* written behind, on a thread per object.

Restores stream each object: read and decompressed ahead on one thread,
written on the caller's.

Objects are written under a temporary name and renamed to Cinder's
``<prefix>-NNNNN`` in volume order, because how many objects a chunk
yields is only known once it has been read.  The threads are native even
under eventlet (hashlib, zlib, bz2 and zstd release the GIL); they never
log nor touch the database.  Memory is bounded by the number of chunks in
flight times a few pieces, whatever the chunk size.
"""

import bz2
import contextlib
import errno
import hashlib
import importlib
import os
import zlib

from cinder import monkey_patch

PIECE_SIZE = 4 * 1024 * 1024
# Pieces of one chunk hashed ahead of its writer.
HASH_AHEAD = 4


def _native(name):
    """The unpatched module: the pipeline needs real threads."""
    if monkey_patch.is_patched():
        from eventlet import patcher
        return patcher.original(name)
    return importlib.import_module(name)


threading = _native('threading')
queue = _native('queue')


class Cancelled(Exception):
    """The run was aborted; the job stopped and removed its objects."""


class Task(object):
    """The result of a function run on the pool."""

    def __init__(self, fn, args):
        self._fn = fn
        self._args = args
        self._done = threading.Event()
        self._value = self._error = None

    def run(self):
        try:
            self._value = self._fn(*self._args)
        except BaseException as exc:  # handed to whoever waits
            self._error = exc
        self._done.set()

    @classmethod
    def finished(cls, value):
        """A task that is already done with ``value``."""
        task = cls(None, ())
        task._value = value
        task._done.set()
        return task

    def done(self):
        return self._done.is_set()

    def wait(self):
        self._done.wait()

    def result(self):
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class Pool(object):
    """A fixed set of native threads running tasks in submission order.

    A size of 0 runs every task at once in the caller, for a pipeline
    limited to one thread.
    """

    def __init__(self, size):
        self._tasks = queue.Queue()
        self._threads = [threading.Thread(target=self._work, daemon=True)
                         for _ in range(size)]
        for thread in self._threads:
            thread.start()

    def _work(self):
        while True:
            task = self._tasks.get()
            if task is None:
                return
            task.run()

    def submit(self, fn, *args):
        task = Task(fn, args)
        if self._threads:
            self._tasks.put(task)
        else:
            task.run()
        return task

    def shutdown(self):
        for _thread in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()


class _Failed(object):
    def __init__(self, error):
        self.error = error


_END = object()


def _put(items, item, stop):
    """Put into a bounded queue unless ``stop`` is set meanwhile."""
    while not stop.is_set():
        try:
            items.put(item, timeout=0.1)
            return True
        except queue.Full:
            pass
    return False


def read_ahead(iterable, depth=2):
    """Yield the items of ``iterable``, produced ahead on its own thread.

    At most ``depth`` items wait; an error of the producer is raised here,
    and closing the generator stops the producer.
    """
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in iterable:
                if not _put(items, item, stop):
                    return
        except BaseException as exc:
            _put(items, _Failed(exc), stop)
            return
        _put(items, _END, stop)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class Background(object):
    """Calls ``fn(item)`` on its own thread for each item put, in order.

    At most ``depth`` items wait.  An error of ``fn`` is raised by the next
    ``put`` or by ``close``.
    """

    def __init__(self, fn, depth=2):
        self._fn = fn
        self._items = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self):
        while True:
            item = self._items.get()
            if item is _END:
                return
            try:
                self._fn(item)
            except BaseException as exc:
                self._error = exc
                self._stop.set()
                return

    def put(self, item):
        if not _put(self._items, item, self._stop):
            raise self._error

    def close(self):
        """Wait until every item is done."""
        if _put(self._items, _END, self._stop):
            self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self):
        """Drop what waits, and stop."""
        self._stop.set()
        while True:
            try:
                self._items.get_nowait()
            except queue.Empty:
                break
        self._items.put(_END)
        self._thread.join()


def extents(fd, start, end):
    """Yield the (offset, end) ranges of [start, end) that may hold data.

    Holes of a sparse file are skipped with SEEK_DATA/SEEK_HOLE.  Where
    the filesystem or device cannot tell (Lustre before 2.14 reports every
    byte as data), the whole range is data.
    """
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole up to the end
                return
            yield pos, end
            return
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole
        pos = hole


class Reader(object):
    """Reads a volume file at any offset, from several threads.

    :param volume_file: the file object the backup manager opened; with
        no usable ``fileno()`` (a stream), reads are serialised and every
        byte is taken as data.
    """

    def __init__(self, volume_file, block_size, piece_size=PIECE_SIZE):
        self.file = volume_file
        self.block_size = block_size
        self.piece_size = max(block_size,
                              piece_size - piece_size % block_size)
        try:
            self.fd = volume_file.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None
        self._lock = threading.Lock()

    def read(self, offset, length):
        if self.fd is not None:
            data = os.pread(self.fd, length, offset)
        else:
            with self._lock:
                self.file.seek(offset)
                data = self.file.read(length)
        # Past the end of the file reads as zeros, as a chunk's tail does.
        return data + bytes(length - len(data)) if len(data) < length \
            else data

    def data_ranges(self, start, end):
        """Block-aligned ranges of [start, end) that may hold data."""
        if self.fd is None:
            yield start, end
            return
        block = self.block_size
        first = last = None
        for data_start, data_end in extents(self.fd, start, end):
            low = data_start - (data_start - start) % block
            high = min(end, data_end + (start - data_end) % block)
            if last is not None and low <= last:
                last = high
                continue
            if last is not None:
                yield first, last
            first, last = low, high
        if last is not None:
            yield first, last

    def pieces(self, start, end):
        """Yield (offset, bytes) of what may hold data, piece by piece."""
        for low, high in self.data_ranges(start, end):
            for offset in range(low, high, self.piece_size):
                yield offset, self.read(
                    offset, min(self.piece_size, high - offset))

    def stream(self, start, end):
        """Yield the bytes of [start, end) in pieces, holes as zeros."""
        pos = start
        for offset, data in self.pieces(start, end):
            yield from zeros(offset - pos, self.piece_size)
            yield data
            pos = offset + len(data)
        yield from zeros(end - pos, self.piece_size)


def zeros(length, piece_size):
    for pos in range(0, length, piece_size):
        yield bytes(min(piece_size, length - pos))


def hash_blocks(data, block_size):
    """The SHA-256 hex digests of the blocks of ``data``."""
    view = memoryview(data)
    return [hashlib.sha256(view[pos:pos + block_size]).hexdigest()
            for pos in range(0, len(view), block_size)]


class Hasher(object):
    """The SHA-256 list of a range, its pieces hashed on the pool."""

    def __init__(self, run):
        self.run = run
        self.shas = []
        self._tasks = []

    def zeros(self, start, end):
        """Digests of the zero blocks of [start, end), a hole."""
        block = self.run.reader.block_size
        if start < end:
            self._tasks.append(Task.finished(
                [self.run.zero_sha(min(block, end - pos))
                 for pos in range(start, end, block)]))

    def add(self, data):
        self._tasks.append(self.run.pool.submit(
            hash_blocks, data, self.run.reader.block_size))
        while len(self._tasks) > HASH_AHEAD:
            self.shas.extend(self._tasks.pop(0).result())

    def finish(self):
        for task in self._tasks:
            self.shas.extend(task.result())
        self._tasks = []
        return self.shas


class Chunk(object):
    """A range of the volume, read when the pipeline needs it.

    Stands in for the bytes ``ChunkedBackupDriver.backup`` reads: it only
    takes ``len()`` and slices of them.
    """

    def __init__(self, offset, length):
        self.offset = offset
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, item):
        start, stop, _step = item.indices(self.length)
        return Chunk(self.offset + start, max(0, stop - start))

    def __repr__(self):
        return 'Chunk(%d, %d)' % (self.offset, self.length)


class Source(object):
    """The volume file as ``ChunkedBackupDriver.backup`` reads it."""

    def __init__(self, volume_file):
        volume_file.seek(0, os.SEEK_END)
        self.size = volume_file.tell()
        self.pos = 0

    def tell(self):
        return self.pos

    def read(self, length):
        length = max(0, min(length, self.size - self.pos))
        if not length:
            return b''
        chunk = Chunk(self.pos, length)
        self.pos += length
        return chunk


class Compression(object):
    """Streams one object through a compressor.

    zlib and bz2 are one stream, byte for byte what their one-shot
    ``compress`` gives.  python-zstd has no streaming API: zstd objects are
    one frame per piece (``zstd.decompress`` reads concatenated frames),
    compressed on the pool.
    """

    def __init__(self, algorithm, module, pool):
        self.algorithm = algorithm
        self.pool = pool
        self.module = module
        if algorithm in ('zlib', 'gzip'):
            self._stream = zlib.compressobj()
        elif algorithm in ('bz2', 'bzip2'):
            self._stream = bz2.BZ2Compressor()
        else:
            self._stream = None

    def compress(self, data):
        """A task whose result is the compressed bytes of ``data``."""
        if self._stream is None:
            return self.pool.submit(self.module.compress, bytes(data))
        return Task.finished(self._stream.compress(data))

    def flush(self):
        return self._stream.flush() if self._stream is not None else b''


class StoredObject(object):
    """One object of a chunk, compressed, hashed and written as it comes.

    The compressed object replaces the plain one only if it is smaller, as
    Cinder decides; for zlib and bz2, if the whole stream is not smaller
    the object is written again uncompressed, from the volume.  A zstd
    object is stored uncompressed when its first piece does not shrink.
    """

    def __init__(self, job, name, offset):
        self.job = job
        self.name = name
        self.offset = offset
        self.length = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.writer = job.run.open_object(name)
        self.out = Background(self.writer.write)
        run = job.run
        self.compression = (Compression(run.algorithm, run.compressor,
                                        run.pool)
                            if run.compressor is not None else None)
        self.stored = 0
        self.pending = []

    def write(self, data):
        self.md5.update(data)
        self.length += len(data)
        if self.compression is None:
            self.out.put(data)
            return
        task = self.compression.compress(data)
        if self.compression.algorithm == 'zstd' and self.length == len(data):
            out = task.result()
            if len(out) >= len(data):  # store this object uncompressed
                self.compression = None
                self.out.put(data)
                return
        self.pending.append(task)
        while self.pending and (len(self.pending) > HASH_AHEAD or
                                self.pending[0].done()):
            self._put(self.pending.pop(0).result())

    def _put(self, out):
        self.stored += len(out)
        self.out.put(out)

    def abort(self):
        self.out.abort()
        self.writer.close()

    def close(self):
        """Finish the object: (name, offset, length, algorithm, md5)."""
        algorithm = 'none'
        if self.compression is not None:
            for task in self.pending:
                self._put(task.result())
            self._put(self.compression.flush())
            algorithm = self.compression.algorithm
        self.out.close()
        if algorithm != 'none' and self.stored >= self.length:
            self.writer.close()
            self.writer = self.job.run.open_object(self.name)
            for data in self.job.run.reader.stream(
                    self.offset, self.offset + self.length):
                self.writer.write(data)
            algorithm = 'none'
        self.writer.close()
        return (self.name, self.offset, self.length, algorithm,
                self.md5.hexdigest())


class ChunkJob(object):
    """One chunk of the volume, processed on a job thread.

    :param full: a full backup: all-zero blocks are not stored and the
        SHA-256 of every block is computed; otherwise (a changed extent of
        an incremental backup) every byte is stored and nothing hashed.
    """

    def __init__(self, run, chunk, full, seq):
        self.run = run
        self.chunk = chunk
        self.full = full
        self.seq = seq
        self.objects = []
        self.shas = []
        self._current = None
        self._gap = 0

    def __call__(self):
        try:
            self._process()
        except BaseException:
            if self._current is not None:
                self._current.abort()
            for name in [o[0] for o in self.objects] + (
                    [self._current.name] if self._current else []):
                self.run.remove_object(name)
            raise
        return self

    def _process(self):
        run = self.run
        start, end = self.chunk.offset, self.chunk.offset + len(self.chunk)
        hasher = Hasher(run)
        if not self.full:  # an extent that changed: all of it, from start
            self._current = StoredObject(self, run.temp_name(self.seq, 0),
                                         start)
        pos = start
        with contextlib.closing(read_ahead(
                run.reader.pieces(start, end))) as pieces:
            for offset, data in pieces:
                if run.cancelled.is_set():
                    raise Cancelled()
                if self.full:
                    hasher.zeros(pos, offset)
                    self._skip(offset - pos)
                    hasher.add(data)
                    self._store_nonzero(offset, data)
                else:
                    self._gap += offset - pos
                    self._store(offset, data)
                pos = offset + len(data)
        if self.full:
            hasher.zeros(pos, end)
            self.shas = hasher.finish()
        else:
            self._gap += end - pos
            self._store(end, b'')
        self._close()

    def _skip(self, length):
        if not length:
            return
        self._gap += length
        if self._current is not None and self._gap >= self.run.min_gap:
            self._close()

    def _store_nonzero(self, offset, data):
        block = self.run.reader.block_size
        view = memoryview(data)
        zero = memoryview(self.run.zero_block)
        first = None
        for pos in range(0, len(view), block):
            piece = view[pos:pos + block]
            if piece == zero[:len(piece)]:
                if first is not None:
                    self._store(offset + first, view[first:pos])
                    first = None
                self._skip(len(piece))
            elif first is None:
                first = pos
        if first is not None:
            self._store(offset + first, view[first:])

    def _store(self, offset, data):
        """Append data at ``offset`` to the current object, or start one."""
        if self._current is not None and self._gap:
            for piece in zeros(self._gap, self.run.reader.piece_size):
                self._current.write(piece)
        elif self._current is None and data:
            self._current = StoredObject(
                self, self.run.temp_name(self.seq, len(self.objects)),
                offset)
        self._gap = 0
        if data:
            self._current.write(data)

    def _close(self):
        if self._current is not None:
            self.objects.append(self._current.close())
            self._current = None
        self._gap = 0


class BackupRun(object):
    """The chunks of one backup in flight, handed back in volume order.

    :param store: the driver's side, an object with ``open_object(name)``,
        ``remove_object(name)`` and ``rename_object(old, new)`` for the
        backup's container (called from the pipeline's threads: no logging,
        no database) and ``prefix``, the backup's object name prefix.
    :param threads: chunks processed at once, and the size of the pool
        that hashes and compresses their pieces.
    """

    def __init__(self, store, reader, threads, algorithm, compressor,
                 min_gap, zero_sha):
        self.store = store
        self.reader = reader
        self.threads = max(1, threads)
        self.algorithm = algorithm
        self.compressor = compressor
        self.min_gap = min_gap
        self.zero_sha = zero_sha
        self.zero_block = bytes(reader.block_size)
        self.cancelled = threading.Event()
        self.jobs = Pool(self.threads)
        self.pool = Pool(self.threads if self.threads > 1 else 0)
        self.queue = []
        self.closed = False
        self._seq = 0

    def open_object(self, name):
        return self.store.open_object(name)

    def remove_object(self, name):
        try:
            self.store.remove_object(name)
        except OSError:
            pass

    def temp_name(self, seq, index):
        return '%s-part%05d-%03d' % (self.store.prefix, seq, index)

    def has_room(self):
        return len(self.queue) < self.threads + 1

    def wait_for_room(self):
        """Wait for the oldest chunk when no other may start yet.

        It blocks: under eventlet, call it in a native thread.
        """
        if not self.has_room():
            self.queue[0].wait()

    def hash_chunk(self, chunk):
        """The SHA-256 list of a chunk (blocks), hashed on the pool."""
        hasher = Hasher(self)
        pos = chunk.offset
        for offset, data in self.reader.pieces(chunk.offset,
                                               chunk.offset + len(chunk)):
            hasher.zeros(pos, offset)
            hasher.add(data)
            pos = offset + len(data)
        hasher.zeros(pos, chunk.offset + len(chunk))
        return hasher.finish()

    def submit(self, chunk, full):
        self._seq += 1
        self.queue.append(self.jobs.submit(
            ChunkJob(self, chunk, full, self._seq)))

    def finished(self, wait=False):
        """Yield the jobs done, in order; with ``wait``, all of them.

        A job that failed raises its error here.
        """
        while self.queue and (wait or self.queue[0].done()):
            yield self.queue.pop(0).result()

    def wait_all(self):
        """Wait for every job (blocks); their errors stay queued."""
        for task in self.queue:
            task.wait()

    def abort(self):
        """Stop the jobs and the threads; their objects are removed.

        Objects already handed back stay: they are the backup's, for
        ``delete_backup`` to remove.
        """
        self.cancelled.set()
        self.wait_all()
        for task in self.queue:
            if task._error is None:
                for name in [o[0] for o in task.result().objects]:
                    self.remove_object(name)
        self.queue = []
        if not self.closed:
            self.closed = True
            self.jobs.shutdown()
            self.pool.shutdown()


class ZstdFrames(object):
    """Splits a zstd stream into whole frames, as the bytes come.

    python-zstd only decompresses whole frames.  The objects of this
    pipeline are one frame per piece; an object of the stock driver is one
    frame, held whole.  Frame layout: RFC 8878, section 3.1.1.
    """

    MAGIC = 0xFD2FB528

    def __init__(self):
        self.buf = bytearray()
        self._block = None  # offset of the next block header
        self._checksum = 0

    def feed(self, data):
        """Yield the frames that ``data`` completes."""
        self.buf += data
        end = self._frame_end()
        while end is not None:
            frame = bytes(self.buf[:end])
            del self.buf[:end]
            self._block = None
            yield frame
            end = self._frame_end()

    def _frame_end(self):
        buf = self.buf
        if self._block is None:
            if len(buf) < 5:
                return None
            if int.from_bytes(buf[:4], 'little') != self.MAGIC:
                # Not a frame this parser knows: hand the rest over whole.
                return None
            descriptor = buf[4]
            single_segment = descriptor >> 5 & 1
            self._checksum = 4 if descriptor & 4 else 0
            content_size = (single_segment, 2, 4, 8)[descriptor >> 6]
            dictionary = (0, 1, 2, 4)[descriptor & 3]
            self._block = (5 + (1 - single_segment) + dictionary +
                           content_size)
        while self._block + 3 <= len(buf):
            header = int.from_bytes(buf[self._block:self._block + 3],
                                    'little')
            size = 1 if header >> 1 & 3 == 1 else header >> 3  # RLE: 1 byte
            if header & 1:  # the last block
                end = self._block + 3 + size + self._checksum
                return end if end <= len(buf) else None
            self._block += 3 + size
        return None


def decompressed(algorithm, module, pieces, limit=PIECE_SIZE):
    """Yield the plain bytes of a stored object's pieces.

    Output comes in pieces of at most ``limit`` bytes (zstd: a frame), so
    that a well compressed object does not unfold in memory at once.
    """
    if algorithm in ('zlib', 'gzip', 'bz2', 'bzip2'):
        stream = (zlib.decompressobj() if algorithm in ('zlib', 'gzip')
                  else bz2.BZ2Decompressor())
        for data in pieces:
            while data:
                out = stream.decompress(data, limit)
                data = (stream.unconsumed_tail if algorithm[0] in 'zg'
                        else b'')
                yield out
            while algorithm[0] == 'b' and not stream.needs_input and \
                    not stream.eof:
                yield stream.decompress(b'', limit)
        if algorithm in ('zlib', 'gzip'):
            yield stream.flush()
    elif algorithm == 'zstd':
        frames = ZstdFrames()
        for data in pieces:
            for frame in frames.feed(data):
                yield module.decompress(frame)
        if frames.buf:
            yield module.decompress(bytes(frames.buf))
    else:
        yield from pieces


def restore_object(pieces, algorithm, module, fd, offset, skip_zeros):
    """Write one object at ``offset`` of ``fd``, then fsync.

    A thread reads and decompresses ahead while this one writes.  With
    ``skip_zeros`` (a new volume, that reads as zeros) all-zero MiBs are
    not written.  Blocks: under eventlet, call it in a native thread.
    Returns the number of bytes restored.
    """
    pos = offset
    with contextlib.closing(read_ahead(
            decompressed(algorithm, module, pieces), HASH_AHEAD)) as ready:
        for data in ready:
            _write(fd, data, pos, skip_zeros)
            pos += len(data)
    os.fsync(fd)
    return pos - offset


def _write(fd, data, offset, skip_zeros, step=1024 * 1024):
    view = memoryview(data)
    zero = bytes(step) if skip_zeros else None
    for pos in range(0, len(view), step):
        part = view[pos:pos + step]
        if zero is None or part != zero[:len(part)]:
            os.pwrite(fd, part, offset + pos)
