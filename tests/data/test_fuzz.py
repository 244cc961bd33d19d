"""Random bytes where a frame, a wav or a metadata CSV should be: only DataError, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moca.data.layout import read_metadata
from moca.data.readers import read_image, read_mask, read_wav
from moca.errors import DataError

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PNG_HEADER = b"\x89PNG\r\n\x1a\n"
WAV_HEADER = b"RIFF\x24\x00\x00\x00WAVEfmt "


def _expect_data_error_or_value(call, path: Path) -> None:
    try:
        call()
    except DataError as exc:
        assert str(path) in str(exc)


@FUZZ
@given(prefix=st.sampled_from([b"", PNG_HEADER, b"\xff\xd8\xff"]), body=st.binary(max_size=512))
def test_read_image_and_mask_on_random_bytes(prefix: bytes, body: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frame.png"
        path.write_bytes(prefix + body)
        _expect_data_error_or_value(lambda: read_image(path), path)
        _expect_data_error_or_value(lambda: read_mask(path, "avss"), path)


@FUZZ
@given(prefix=st.sampled_from([b"", WAV_HEADER]), body=st.binary(max_size=512))
def test_read_wav_on_random_bytes(prefix: bytes, body: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audio.wav"
        path.write_bytes(prefix + body)
        _expect_data_error_or_value(lambda: read_wav(path), path)


@FUZZ
@given(
    benchmark=st.sampled_from(["s4", "ms3", "avss"]),
    header=st.sampled_from([b"", b"name,start,category,split\n", b"video_id,split\n", b"uid,label,split\n"]),
    body=st.binary(max_size=256) | st.text(alphabet=",\n./\\abc01 \"'", max_size=120).map(str.encode),
)
def test_read_metadata_on_random_bytes(benchmark: str, header: bytes, body: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        csv = root / {"s4": "Single-source/s4_meta_data.csv", "ms3": "Multi-sources/ms3_meta_data.csv"}.get(
            benchmark, "metadata.csv"
        )
        csv.parent.mkdir(parents=True, exist_ok=True)
        csv.write_bytes(header + body)
        _expect_data_error_or_value(lambda: read_metadata(root, benchmark), csv)
