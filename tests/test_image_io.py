"""mitk._image_io: loads build consistent images, saves read one consistent snapshot."""

import sys

import numpy as np
import pytest

import mitk
import mitk.properties
from mitk_testing import flipping_spacing


def test_save_sees_one_spacing_for_every_step(tmp_path):
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    img = mitk.Image(np.zeros((200, 1, 1, 1), np.uint8))
    try:
        with flipping_spacing(img):
            for i in range(100):
                img.save(tmp_path / "t.nrrd")  # 'step 61 differs' before
    finally:
        sys.setswitchinterval(old)


class _DeletedWhileRead(mitk.properties.PropertyMap):
    def __getitem__(self, key):
        self.pop(key, None)
        return super().__getitem__(key)


def test_save_with_a_key_deleted_between_listing_and_reading(tmp_path):
    img = mitk.Image(np.zeros((2, 2), np.uint8))
    img._props = _DeletedWhileRead({"a": "1"})
    img.save(tmp_path / "t.nrrd")
    assert mitk.Image(tmp_path / "t.nrrd").properties["a"] == "1"


def test_unusable_time_values_in_a_file_are_corrupt(tmp_path):
    path = tmp_path / "t.nrrd"
    header = (b"NRRD0005\ntype: uint8\ndimension: 4\nspace dimension: 4\nsizes: 1 1 1 2\n"
              b"space directions: (1,0,0,0) (0,1,0,0) (0,0,1,0) (0,0,0,1e308)\n"
              b"kinds: domain domain domain domain\nencoding: raw\nspace origin: (0,0,0,1e308)\n\n")
    path.write_bytes(header + bytes(2))
    with pytest.raises(mitk.CorruptFileError, match="time"):
        mitk.Image(path)
