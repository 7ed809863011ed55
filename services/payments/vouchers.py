"""Receipt images of payment confirmations (付款凭证): checked by content, stored content-addressed.

Blocking file work only (call it through `asyncio.to_thread`). An upload is handled in two steps:

1. `stage`: every file is copied in chunks into a temporary file under `VOUCHER_DIR/tmp` while its
   SHA-256 is computed and its size counted (more than `MAX_BYTES` stops the copy), then Pillow
   opens it and verifies it: only JPEG, PNG and BMP pass, whatever the file name says, and no image
   larger than `MAX_PIXELS` (a decompression bomb is refused before anything is decoded);
2. `commit_files`: the staged files move to `VOUCHER_DIR/<sha[:2]>/<sha[2:4]>/<sha>` (one copy per
   content, whoever uploaded it). The caller removes the files this upload created
   (`remove_created`) when its database transaction does not commit.

Any failure in step 1 removes every staged file of the upload: nothing is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from shared.errors import ValidationFailed
from shared.settings import get_settings

MAX_FILES = 150
MAX_BYTES = 5 * 1024 * 1024  # 5 MiB = 5,242,880 bytes per image
MAX_PIXELS = 60_000_000  # a 60-megapixel photo of a receipt is plenty
CHUNK = 256 * 1024
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp"}


class VoucherRejected(ValidationFailed):
    code = "voucher_invalid"


@dataclass
class StagedImage:
    filename: str
    temp_path: Path
    sha256: str
    size: int
    content_type: str
    storage_key: str = ""
    created: bool = False  # this upload created the stored file (remove it on rollback)


def root() -> Path:
    return Path(get_settings().voucher_dir)


def path_of(storage_key: str) -> Path:
    return root() / storage_key


def _reject(index: int, message: str, code: str) -> VoucherRejected:
    error = VoucherRejected(message, errors=[{"loc": ["body", "files", index], "msg": message}])
    error.code = code
    return error


def _copy(index: int, source: BinaryIO, target: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if size > MAX_BYTES:
            raise _reject(
                index, f"第{index + 1}个文件超过 5MB（5,242,880 字节）", "voucher_too_large"
            )
        digest.update(chunk)
        target.write(chunk)
    if size == 0:
        raise _reject(index, f"第{index + 1}个文件是空文件", "voucher_empty")
    return digest.hexdigest(), size


def _verify(index: int, path: Path) -> str:
    """The image's content type, or a 422: not an image, another format, broken, or too large."""
    try:
        with Image.open(path) as image:
            kind = image.format or ""
            width, height = image.size
            if kind not in CONTENT_TYPES:
                raise _reject(
                    index,
                    f"第{index + 1}个文件不是 jpg、jpeg、png 或 bmp 格式的图片",
                    "voucher_not_image",
                )
            if width * height > MAX_PIXELS:
                raise _reject(
                    index, f"第{index + 1}个图片尺寸过大（{width}×{height}）", "voucher_too_large"
                )
            image.verify()
    except Image.DecompressionBombError as exc:
        raise _reject(index, f"第{index + 1}个图片尺寸过大", "voucher_too_large") from exc
    except VoucherRejected:
        raise
    except Exception as exc:  # UnidentifiedImageError, truncated or corrupt data, ...
        raise _reject(
            index, f"第{index + 1}个文件不是 jpg、jpeg、png 或 bmp 格式的图片", "voucher_not_image"
        ) from exc
    return CONTENT_TYPES[kind]


def _clean_name(filename: str | None, index: int) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip()
    name = name.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
    name = "".join(ch for ch in name if ch.isprintable())
    return name[-255:] or f"voucher-{index + 1}"


def stage(files: list[tuple[str | None, BinaryIO]]) -> list[StagedImage]:
    """Copy and verify every file (see the module docstring); all or nothing."""
    tmp_dir = root() / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    staged: list[StagedImage] = []
    try:
        for index, (filename, source) in enumerate(files):
            fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
            temp_path = Path(name)
            try:
                with os.fdopen(fd, "wb") as target:
                    sha, size = _copy(index, source, target)
                content_type = _verify(index, temp_path)
            except BaseException:
                temp_path.unlink(missing_ok=True)
                raise
            staged.append(
                StagedImage(_clean_name(filename, index), temp_path, sha, size, content_type)
            )
    except BaseException:
        discard(staged)
        raise
    return staged


def commit_files(staged: list[StagedImage]) -> None:
    """Move the staged files to their content address; remember which ones this call created."""
    try:
        for image in staged:
            key = f"{image.sha256[:2]}/{image.sha256[2:4]}/{image.sha256}"
            image.storage_key = key
            final = path_of(key)
            if final.exists():
                image.temp_path.unlink(missing_ok=True)
                continue
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(image.temp_path, final)
            image.created = True
    except BaseException:
        remove_created(staged)
        raise


def discard(staged: list[StagedImage]) -> None:
    """Remove staged temporary files that were not moved into place."""
    for image in staged:
        with contextlib.suppress(OSError):
            image.temp_path.unlink(missing_ok=True)


def remove_created(staged: list[StagedImage]) -> None:
    """Undo an upload whose rows did not commit: its temporary files and the files it created."""
    discard(staged)
    for image in staged:
        if image.created and image.storage_key:
            with contextlib.suppress(OSError):
                path_of(image.storage_key).unlink(missing_ok=True)
            image.created = False
