"""Random access to the records of uncompressed array_record shards, without copying them.

`data_pipeline.prepare` writes shards with ``group_size:1,uncompressed``: each example is
one Riegeli *simple chunk* whose data are the record's bytes as they are, only
interrupted by a 24-byte block header at every multiple of 64 KiB of the file (Riegeli's
file format, ``riegeli/doc/riegeli_records_file_format.md``). Reading such a record
through ``ArrayRecordReader`` costs about 10 ms of CPU for a 4 MB example (a 10 s clip
of 250 JPEG frames): the chunk is copied three times into freshly allocated buffers (each
page of them a page fault) and hashed, although a training clip then decodes only 8
frames of 17 KB.

`RecordFile` maps the file into memory instead, finds the chunk of each record by walking
the chunk headers once (lazily, as far as the records asked for), and returns a
`SplicedRecord`: the record's bytes as a read-only sequence that copies only the slices
asked for. Scanning the ``tf.Example`` for the frames' byte ranges then touches a few
bytes per frame, and each sampled frame is copied once.

Only files whose chunks are all simple, uncompressed and of one record each are read
this way (`RecordFile.record` returns None otherwise, and for a path that is not a local
file); callers fall back to ``ArrayRecordReader``. Chunk hashes are not verified here: a
damaged frame shows up as a JPEG that does not decode (`sources.load_clip` raises
``VideoDecodeError`` and the pipeline replaces the sample), while ``ArrayRecordReader``
would reject the whole example.
"""

from __future__ import annotations

import mmap
import os
import threading

BLOCK_SIZE = 1 << 16
BLOCK_HEADER_SIZE = 24
USABLE_BLOCK_SIZE = BLOCK_SIZE - BLOCK_HEADER_SIZE
CHUNK_HEADER_SIZE = 40

# Chunk types (the byte after data_hash in a chunk header).
SIGNATURE, METADATA, PADDING, SIMPLE = 0x73, 0x6D, 0x70, 0x72  # 's', 'm', 'p', 'r'
_SKIPPED_TYPES = (SIGNATURE, METADATA, PADDING)


class UnsupportedLayout(ValueError):
    """The file is not (only) uncompressed simple chunks of one record each."""


def _usable_index(position: int) -> int:
    """Index among the file's non-header bytes of the first such byte at or after
    ``position`` (a chunk never begins inside a block header)."""
    block, offset = divmod(position, BLOCK_SIZE)
    return block * USABLE_BLOCK_SIZE + max(offset - BLOCK_HEADER_SIZE, 0)


def _add_with_overhead(position: int, size: int) -> int:
    # The format specification's AddWithOverhead: the file position ``size`` bytes of chunk
    # after ``position``, block headers in between counted.
    overhead_blocks = (size + (position + USABLE_BLOCK_SIZE - 1) % BLOCK_SIZE) // USABLE_BLOCK_SIZE
    return position + size + overhead_blocks * BLOCK_HEADER_SIZE


def _round_up_to_possible_chunk_boundary(position: int) -> int:
    remaining_in_block = BLOCK_SIZE - 1 - (position + BLOCK_SIZE - 1) % BLOCK_SIZE
    return position + max(remaining_in_block - (USABLE_BLOCK_SIZE - 1), 0)


def _chunk_end(begin: int, data_size: int, num_records: int) -> int:
    return max(
        _add_with_overhead(begin, CHUNK_HEADER_SIZE + data_size),
        _round_up_to_possible_chunk_boundary(begin + num_records),
    )


def read_varint(data, pos: int) -> tuple[int, int]:
    """A protobuf base-128 varint of `data` (bytes-like) at `pos`: `(value, position after)`."""
    result, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError(f"malformed varint at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


class SplicedRecord:
    """The bytes of one record, read from the mapped file on demand.

    ``record[i]`` is an int and ``record[a:b]`` is ``bytes`` (contiguous slices only), as
    for ``bytes``; only the slice asked for is copied.
    """

    __slots__ = ("_map", "_size", "_start")

    def __init__(self, file_map: mmap.mmap, start: int, size: int):
        self._map = file_map
        self._start = start  # Usable-byte index of the record's first byte.
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self._size)
            if step != 1:
                raise ValueError("SplicedRecord slices must be contiguous")
            return _read(self._map, self._start + start, max(stop - start, 0))
        if key < 0:
            key += self._size
        if not 0 <= key < self._size:
            raise IndexError("record index out of range")
        block, offset = divmod(self._start + key, USABLE_BLOCK_SIZE)
        return self._map[block * BLOCK_SIZE + BLOCK_HEADER_SIZE + offset]


def _read(file_map: mmap.mmap, usable: int, size: int) -> bytes:
    """``size`` bytes from usable-byte index ``usable`` on, block headers skipped."""
    block, offset = divmod(usable, USABLE_BLOCK_SIZE)
    position = block * BLOCK_SIZE + BLOCK_HEADER_SIZE + offset
    if offset + size <= USABLE_BLOCK_SIZE:  # Within one block: the usual case.
        if position + size > len(file_map):
            raise IndexError("read past the end of the file")
        return file_map[position : position + size]
    pieces = []
    while size > 0:
        take = min(size, BLOCK_SIZE - position % BLOCK_SIZE)
        if position + take > len(file_map):
            raise IndexError("read past the end of the file")
        pieces.append(file_map[position : position + take])
        size -= take
        position += take + BLOCK_HEADER_SIZE  # Skip the next block's header.
    return b"".join(pieces)


class RecordFile:
    """One array_record file, memory-mapped; `record` gives its records without copying.

    Picklable (for grain worker processes): the mapping and the chunk index are rebuilt
    lazily in each process.
    """

    def __init__(self, path: str, num_records: int | None = None):
        """Names the file; nothing is opened before the first `record` call.

        Args:
          path: The array_record file.
          num_records: Its record count if known (TFDS's file instructions have it);
            otherwise ``ArrayRecordReader`` reads it off the file's footer when needed.
        """
        self.path = path
        self.num_records = num_records
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._map: mmap.mmap | None = None
        self._records: list[tuple[int, int]] = []  # (usable start, size) per record
        self._next_chunk = 0  # File position of the first chunk not scanned yet.
        self._unsupported: str | None = None

    def __getstate__(self):
        return {"path": self.path, "num_records": self.num_records}

    def __setstate__(self, state):
        self.path, self.num_records = state["path"], state["num_records"]
        self._reset()

    def record(self, index: int) -> SplicedRecord | None:
        """Record ``index`` of the file, or None where this reader does not apply.

        None means: the path is not a local file, or the file is not made only of
        uncompressed simple chunks of one record (e.g. TFDS's default compression);
        read it with ``ArrayRecordReader``.

        Raises:
          IndexError: The file has fewer records, or ends early.
        """
        if self._unsupported is not None:
            return None
        if index >= len(self._records):
            with self._lock:
                try:
                    self._scan_to(index)
                except (UnsupportedLayout, OSError, ValueError, RuntimeError) as e:
                    self._unsupported = str(e) or type(e).__name__
                    return None
        if index < 0:
            raise IndexError(f"record index {index} is negative")
        start, size = self._records[index]
        return SplicedRecord(self._map, start, size)

    def _scan_to(self, index: int) -> None:
        if self._map is None:
            if not os.path.isfile(self.path):
                raise UnsupportedLayout(f"{self.path} is not a local file")
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            if self.num_records is None:
                from array_record.python import array_record_module

                reader = array_record_module.ArrayRecordReader(self.path)
                self.num_records = reader.num_records()
                reader.close()
        if index >= self.num_records:  # The array_record footer's chunks come next.
            raise IndexError(f"{self.path} has {self.num_records} records, not {index + 1}")
        file_map = self._map
        while len(self._records) <= index:
            begin = self._next_chunk
            if begin + CHUNK_HEADER_SIZE > len(file_map):
                raise IndexError(f"{self.path} has {len(self._records)} records")
            usable = _usable_index(begin)
            header = _read(file_map, usable, CHUNK_HEADER_SIZE)
            data_size = int.from_bytes(header[8:16], "little")
            chunk_type = header[24]
            num_records = int.from_bytes(header[25:32], "little")
            decoded_size = int.from_bytes(header[32:40], "little")
            end = _chunk_end(begin, data_size, num_records)
            if end > len(file_map):
                raise IndexError(f"{self.path}: a chunk runs past the end of the file")
            self._next_chunk = end
            if chunk_type in _SKIPPED_TYPES and num_records == 0:
                continue
            if chunk_type != SIMPLE or num_records != 1:
                raise UnsupportedLayout(
                    f"chunk type {chunk_type:#x} with {num_records} records at {begin}"
                )
            # Simple chunk data: compression type, varint size of the record sizes, the
            # sizes (one varint here), then the record's bytes.
            data_start = usable + CHUNK_HEADER_SIZE
            head = _read(file_map, data_start, min(data_size, 21))
            if head[:1] != b"\x00":
                raise UnsupportedLayout(f"compressed chunk (type {head[:1]!r}) at {begin}")
            sizes_size, pos = read_varint(head, 1)
            record_size, after = read_varint(head, pos)
            if after - pos != sizes_size or record_size != decoded_size:
                raise UnsupportedLayout(f"inconsistent simple chunk at {begin}")
            if pos + sizes_size + record_size != data_size:
                raise UnsupportedLayout(f"simple chunk sizes do not add up at {begin}")
            self._records.append((data_start + after, record_size))

    def __repr__(self) -> str:
        return f"RecordFile({self.path!r})"
