"""Enhanced multi-frame objects: one frame record per frame from the functional groups.

Each attribute is taken from the frame's own item of the Per-Frame Functional Groups Sequence,
else from the Shared Functional Groups Sequence, else from the top level (as the standard
layers them).  Time keys, in order: Temporal Position Index, Frame Acquisition DateTime, Nominal
Cardiac Trigger Delay Time, then the Dimension Index Values; frames are sorted by position along
the normal afterwards, so the stored frame order does not matter.
"""

from __future__ import annotations

from ...errors import CorruptFileError
from ._frames import Frame, _b_value, _common, _finite, _geometry, datetime_ms
from ._parse import Header
from ._pydicom import pydicom, quiet_read

__all__ = ["enhanced_frames"]


def _item(group, sequence: str):
    seq = getattr(group, sequence, None) if group is not None else None
    return seq[0] if seq else None


def _lookup(per, shared, sequence: str, keyword: str):
    for group in (per, shared):
        item = _item(group, sequence)
        if item is not None and keyword in item:
            value = item[keyword].value
            if value is not None and value != "":
                return value
    return None


def _floats(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and \
            not isinstance(value, (str, bytes)):
        return tuple(float(v) for v in value)
    return (float(value),)


def enhanced_frames(h: Header) -> list[Frame]:
    """Frames of the enhanced multi-frame object ``h`` (its functional groups read by pydicom).

    Raises CorruptFileError naming the file for functional groups that do not parse.
    """
    module = pydicom()
    with quiet_read(h.path, "enhanced multi-frame functional groups"):
        return _frames(h, module.dcmread(h.path, stop_before_pixels=True))


def _frames(h: Header, ds) -> list[Frame]:
    count = int(ds.get("NumberOfFrames", 1) or 1)
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per_seq = ds.get("PerFrameFunctionalGroupsSequence") or []
    if per_seq and len(per_seq) != count:
        raise CorruptFileError(f"{h.path}: PerFrameFunctionalGroupsSequence (5200,9230) has "
                               f"{len(per_seq)} items for NumberOfFrames {count}")
    template = Frame(h, 0)
    _common(template, h)
    _geometry(template, h)
    frames = []
    for i in range(count):
        per = per_seq[i] if per_seq else None
        f = Frame(h, i)
        for slot in Frame.__slots__:
            setattr(f, slot, getattr(template, slot))
        f.index = i
        ipp = _floats(_lookup(per, shared, "PlanePositionSequence", "ImagePositionPatient"))
        iop = _floats(_lookup(per, shared, "PlaneOrientationSequence",
                              "ImageOrientationPatient"))
        where = f"{h.path} (frame {i + 1})"
        if ipp is not None and iop is not None:
            f.position = _finite(h, f"ImagePositionPatient (0020,0032) of frame {i + 1}", ipp, 3)
            f.orientation = _finite(h, f"ImageOrientationPatient (0020,0037) of frame {i + 1}",
                                    iop, 6)
        else:
            f.position = f.orientation = None
        sp = _floats(_lookup(per, shared, "PixelMeasuresSequence", "PixelSpacing"))
        if sp is not None:
            sp = _finite(h, f"PixelSpacing (0028,0030) of frame {i + 1}", sp, 2)
            if sp[0] <= 0 or sp[1] <= 0:
                raise CorruptFileError(f"{where}: PixelSpacing (0028,0030) is {sp}; expected "
                                       "two spacings > 0")
            f.spacing = sp
        thick = _floats(_lookup(per, shared, "PixelMeasuresSequence", "SliceThickness"))
        if thick and thick[0] > 0:
            f.thickness = thick[0]
        between = _floats(_lookup(per, shared, "PixelMeasuresSequence", "SpacingBetweenSlices"))
        if between and between[0] > 0:
            f.between = between[0]
        slope = _floats(_lookup(per, shared, "PixelValueTransformationSequence", "RescaleSlope"))
        intercept = _floats(_lookup(per, shared, "PixelValueTransformationSequence",
                                    "RescaleIntercept"))
        if slope is not None:
            f.slope = _finite(h, f"RescaleSlope of frame {i + 1}", slope, 1)[0]
        if intercept is not None:
            f.intercept = _finite(h, f"RescaleIntercept of frame {i + 1}", intercept, 1)[0]
        echo = _lookup(per, shared, "MREchoSequence", "EffectiveEchoTime")
        b = _lookup(per, shared, "MRDiffusionSequence", "DiffusionBValue")
        direction = None
        diffusion = _item(per, "MRDiffusionSequence") or _item(shared, "MRDiffusionSequence")
        if diffusion is not None:
            gradient = _item(diffusion, "DiffusionGradientDirectionSequence")
            if gradient is not None and "DiffusionGradientOrientation" in gradient:
                direction = tuple(round(float(v), 4)
                                  for v in gradient.DiffusionGradientOrientation)
        stack = _lookup(per, None, "FrameContentSequence", "StackID")
        f.split = (round(float(echo), 3) if echo is not None else f.split[0],
                   round(float(b), 1) if b is not None else _b_value(h), direction,
                   f.split[3], stack)
        temporal = _lookup(per, None, "FrameContentSequence", "TemporalPositionIndex")
        acquired = datetime_ms(str(_lookup(per, None, "FrameContentSequence",
                                           "FrameAcquisitionDateTime") or "") or None)
        trigger = _lookup(per, shared, "CardiacSynchronizationSequence",
                          "NominalCardiacTriggerDelayTime")
        dims = _lookup(per, None, "FrameContentSequence", "DimensionIndexValues")
        f.clock = acquired if acquired is not None else template.clock
        f.time = {
            "TemporalPositionIndex": int(temporal) if temporal is not None else None,
            "TriggerTime": float(trigger) if trigger is not None else None,
            "AcquisitionTime": acquired,
            "DimensionIndexValues": tuple(int(v) for v in _floats(dims)) if dims else None,
            "InstanceNumber": None,
        }
        f.instance = i
        frames.append(f)
    return frames
