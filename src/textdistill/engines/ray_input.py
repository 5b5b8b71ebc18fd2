"""Input files read by Ray Data: one read task per file, one block per chunk.

Needs Ray Data (``textdistill[ray]``); :mod:`textdistill.engines.ray_engine` imports this module
only once Ray is there. A read task calls :meth:`ChunkReader.read`, the local engine's reading,
so both engines read, check and cut a file the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from textdistill.data.chunks import Chunk, ChunkReader, FileToRead

# A row's shard is (file_index, chunk); position is its place in the chunk of ``size`` rows.
# skipped and last are the chunk's, repeated on each row, so that they reach the writer.
KEY = ("file_index", "chunk")
BLOCK_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("chunk", pa.int32()),
        ("position", pa.int32()),
        ("size", pa.int32()),
        ("id", pa.string()),
        ("text", pa.string()),
        ("file", pa.string()),
        ("row", pa.int64()),
        ("skipped", pa.int32()),
        ("last", pa.bool_()),
    ]
)


class InputFilesDatasource(Datasource):
    """The input ``files`` still to read: a read task each, which reads its file with ``reader``
    and yields a block for each chunk not written yet."""

    def __init__(self, reader: ChunkReader, files: Sequence[FileToRead]) -> None:
        super().__init__()
        self.reader = reader
        self.files = list(files)

    def estimate_inmemory_data_size(self) -> int:
        return sum(todo.file.size for todo in self.files)  # the size on disk: a rough guide, known without reading

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context=None) -> list[ReadTask]:
        return [
            ReadTask(
                functools.partial(_read_blocks, self.reader, todo),
                BlockMetadata(num_rows=None, size_bytes=todo.file.size, input_files=[todo.file.absolute], exec_stats=None),
                schema=BLOCK_SCHEMA,
                per_task_row_limit=per_task_row_limit,
            )
            for todo in self.files
        ]


def _read_blocks(reader: ChunkReader, todo: FileToRead) -> Iterator[pa.Table]:
    for chunk in reader.read(todo):
        yield chunk_block(chunk)


def chunk_block(chunk: Chunk) -> pa.Table:
    """A chunk as a Ray block (columns: :data:`BLOCK_SCHEMA`)."""
    n = len(chunk)
    columns = {
        "file_index": [chunk.file_index] * n,
        "chunk": [chunk.index] * n,
        "position": range(n),
        "size": [n] * n,
        "id": chunk.ids,
        "text": chunk.texts,
        "file": [chunk.file] * n,
        "row": chunk.rows,
        "skipped": [chunk.skipped] * n,
        "last": [chunk.last] * n,
    }
    return pa.table({name: pa.array(values, BLOCK_SCHEMA.field(name).type) for name, values in columns.items()})


def chunk_from_columns(key: tuple[int, ...], columns: dict[str, np.ndarray]) -> Chunk:
    """The chunk with ``key`` from its rows' columns, back in the chunk's order."""
    return Chunk(
        key[0],
        key[1],
        str(columns["file"][0]),
        columns["id"].tolist(),
        columns["text"].tolist(),
        columns["row"].tolist(),
        int(columns["skipped"][0]),
        bool(columns["last"][0]),
    )
