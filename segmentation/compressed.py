"""Short stored values compressed with zstd and a frozen dictionary (the packed state, the coded history).

Why a dictionary: a value of a few hundred bytes is too short for a compressor to find repeats in it alone
(zstd saves ~25 % on a packed state), but most of it repeats *across* customers (layout, zeros, timestamp
headers, names of the default definitions); a dictionary trained on generated values
(`python -m streams.core.dictionaries`) holds those once, and a value about halves. Frames are zstd's
magicless format with the content size and no checksum or dictionary id: 5-6 bytes of frame over the data.
A dictionary is frozen with the format byte of the values written with it: they must decompress with it
forever, so a new dictionary needs a new format byte (each one's digest is pinned by a test).
"""

from __future__ import annotations

import threading
from importlib import resources

import zstandard

__all__ = ["LARGEST", "LEVEL", "Compressed", "parameters"]

LEVEL = 3  # zstd level: 6 and over cost 4x the time for ~3 % fewer bytes on a ~300-byte value
LARGEST = 1 << 24  # bytes a value may decompress to: a damaged header never asks for more memory than this


def parameters() -> zstandard.ZstdCompressionParameters:
    """The frame parameters every value is compressed with (the trainer measures with them too)."""
    return zstandard.ZstdCompressionParameters.from_level(
        LEVEL,
        format=zstandard.FORMAT_ZSTD1_MAGICLESS,
        write_content_size=True,
        write_checksum=False,
        write_dict_id=False,
    )


class Compressed:
    """The codec of one frozen dictionary, a data file of `package`; read at first use, never at import."""

    def __init__(self, package: str, resource: str) -> None:
        self.package = package
        self.resource = resource
        self._dictionary: zstandard.ZstdCompressionDict | None = None
        self._local = threading.local()  # zstd contexts are not thread safe: one pair per thread

    def dictionary(self) -> zstandard.ZstdCompressionDict:
        if self._dictionary is None:
            data = resources.files(self.package).joinpath(self.resource).read_bytes()
            self._dictionary = zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)
        return self._dictionary

    def pack(self, raw: bytes) -> bytes:
        compressor: zstandard.ZstdCompressor | None = getattr(self._local, "compressor", None)
        if compressor is None:
            dictionary = self.dictionary()
            compressor = zstandard.ZstdCompressor(dict_data=dictionary, compression_params=parameters())
            self._local.compressor = compressor
        return compressor.compress(raw)

    def unpack(self, packed: bytes) -> bytes:
        """The bytes `pack` was given; a damaged value raises `zstandard.ZstdError`."""
        size = zstandard.get_frame_parameters(packed, format=zstandard.FORMAT_ZSTD1_MAGICLESS).content_size
        if size > LARGEST:  # damaged, or no content size (unknown reads as 2**64 - 1): never written so
            raise zstandard.ZstdError(f"frame claims {size} bytes")
        decompressor: zstandard.ZstdDecompressor | None = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = zstandard.ZstdDecompressor(
                dict_data=self.dictionary(), format=zstandard.FORMAT_ZSTD1_MAGICLESS
            )
            self._local.decompressor = decompressor
        return decompressor.decompress(packed)
