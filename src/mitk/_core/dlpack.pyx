"""DLPack export of a PixelBuffer (CPU, zero-copy), for ``Image.__dlpack__``.

The capsule's manager context holds a buffer-protocol export of the PixelBuffer, so the pixels
stay alive (and the image counts the export, refusing re-initialisation) until the consumer calls
the deleter.  Both the versioned (DLPack >= 1.0, with the read-only flag) and the legacy capsule
are produced.  Importing is left to NumPy (``numpy.from_dlpack``), which already handles every
producer.

A versioned export is read-only, as ``np.asarray(img)`` is, unless it is a private copy or the
caller asked for a writable one: a consumer writing through a zero-copy export would bypass the
image's lock.  (NumPy honours the flag; PyTorch 2.x ignores it, see tests/test_dlpack_export.py.)
"""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_RECORDS_RO
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_IsValid, PyCapsule_GetPointer
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free

from mitk._core.buffer cimport PixelBuffer

__all__ = ["export_capsule", "DLPACK_VERSION"]

#: The DLPack version of the versioned capsules this module produces.
DLPACK_VERSION = (1, 1)


cdef extern from *:
    """
    /* The DLPack ABI (dlpack.h, version 1.1), declared here so that no header is needed. */
    typedef struct { uint32_t major; uint32_t minor; } mitk_DLPackVersion;
    typedef struct { int32_t device_type; int32_t device_id; } mitk_DLDevice;
    typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } mitk_DLDataType;
    typedef struct {
        void *data; mitk_DLDevice device; int32_t ndim; mitk_DLDataType dtype;
        int64_t *shape; int64_t *strides; uint64_t byte_offset;
    } mitk_DLTensor;
    typedef struct mitk_DLManagedTensor {
        mitk_DLTensor dl_tensor; void *manager_ctx;
        void (*deleter)(struct mitk_DLManagedTensor *self);
    } mitk_DLManagedTensor;
    typedef struct mitk_DLManagedTensorVersioned {
        mitk_DLPackVersion version; void *manager_ctx;
        void (*deleter)(struct mitk_DLManagedTensorVersioned *self);
        uint64_t flags; mitk_DLTensor dl_tensor;
    } mitk_DLManagedTensorVersioned;
    """
    ctypedef struct mitk_DLPackVersion:
        uint32_t major
        uint32_t minor
    ctypedef struct mitk_DLDevice:
        int32_t device_type
        int32_t device_id
    ctypedef struct mitk_DLDataType:
        uint8_t code
        uint8_t bits
        uint16_t lanes
    ctypedef struct mitk_DLTensor:
        void *data
        mitk_DLDevice device
        int32_t ndim
        mitk_DLDataType dtype
        int64_t *shape
        int64_t *strides
        uint64_t byte_offset
    ctypedef struct mitk_DLManagedTensor:
        mitk_DLTensor dl_tensor
        void *manager_ctx
        void (*deleter)(mitk_DLManagedTensor *self) noexcept nogil
    ctypedef struct mitk_DLManagedTensorVersioned:
        mitk_DLPackVersion version
        void *manager_ctx
        void (*deleter)(mitk_DLManagedTensorVersioned *self) noexcept nogil
        uint64_t flags
        mitk_DLTensor dl_tensor

cdef enum:
    kDLCPU = 1
    kDLInt = 0
    kDLUInt = 1
    kDLFloat = 2
    kDLComplex = 5
    kDLBool = 6

cdef uint64_t FLAG_READ_ONLY = 1
cdef uint64_t FLAG_IS_COPIED = 2

# The manager context: the export that pins the pixels, plus shape/strides storage.
ctypedef struct _Context:
    Py_buffer view
    int64_t shape[8]
    int64_t strides[8]


cdef void _release_context(_Context *ctx) noexcept nogil:
    # Deleters may be called from any thread, with or without the GIL.
    with gil:
        PyBuffer_Release(&ctx.view)
    free(ctx)


cdef void _delete_versioned(mitk_DLManagedTensorVersioned *self) noexcept nogil:
    _release_context(<_Context *> self.manager_ctx)
    free(self)


cdef void _delete_legacy(mitk_DLManagedTensor *self) noexcept nogil:
    _release_context(<_Context *> self.manager_ctx)
    free(self)


cdef void _capsule_versioned(object capsule) noexcept:
    # A capsule still named "dltensor_versioned" was never consumed: delete it here.
    cdef mitk_DLManagedTensorVersioned *t
    if PyCapsule_IsValid(capsule, b"dltensor_versioned"):
        t = <mitk_DLManagedTensorVersioned *> PyCapsule_GetPointer(capsule, b"dltensor_versioned")
        if t != NULL and t.deleter != NULL:
            t.deleter(t)


cdef void _capsule_legacy(object capsule) noexcept:
    cdef mitk_DLManagedTensor *t
    if PyCapsule_IsValid(capsule, b"dltensor"):
        t = <mitk_DLManagedTensor *> PyCapsule_GetPointer(capsule, b"dltensor")
        if t != NULL and t.deleter != NULL:
            t.deleter(t)


cdef mitk_DLDataType _dtype_of(object dtype) except *:
    cdef mitk_DLDataType dt
    kind = dtype.kind
    dt.code = (kDLBool if kind == "b" else kDLInt if kind == "i" else kDLUInt if kind == "u"
               else kDLFloat if kind == "f" else kDLComplex)
    dt.bits = dtype.itemsize * 8
    dt.lanes = 1
    return dt


def export_capsule(PixelBuffer buf, bint versioned, bint read_only=False, bint copied=False,
                   bint writable=False):
    """A DLPack capsule viewing ``buf`` (zero-copy, CPU).

    Parameters
    ----------
    buf : PixelBuffer
    versioned : bool
        True: a ``"dltensor_versioned"`` capsule (DLPack 1.1) carrying the flags; False: a legacy
        ``"dltensor"`` capsule (which cannot say read-only, so callers refuse that case).
    read_only : bool
        The memory itself is read-only: the export is read-only whatever else is asked.
    copied : bool
        ``buf`` is a private copy made for this export (DLPack's IS_COPIED flag); nobody else
        sees it, so the export is writable.
    writable : bool
        The caller asked for a writable zero-copy export of shared memory.

    Returns
    -------
    PyCapsule
        Without ``copied`` or ``writable``, a versioned capsule carries the READ_ONLY flag (the
        default, like ``np.asarray(img)``).

    Notes
    -----
    Holds a buffer export of ``buf`` until the consumer's deleter runs; takes no lock, and a
    writable export bypasses the image's lock as a writable direct view does.
    """
    # Read-only unless a private copy or asked for: a zero-copy export that silently came out
    # writable let np.from_dlpack(img) write into an image np.asarray(img) shows read-only.
    cdef bint export_read_only = read_only or not (copied or writable)
    cdef _Context *ctx = <_Context *> malloc(sizeof(_Context))
    cdef mitk_DLTensor *tensor
    cdef mitk_DLManagedTensorVersioned *vt = NULL
    cdef mitk_DLManagedTensor *lt = NULL
    cdef int i
    if ctx == NULL:
        raise MemoryError()
    try:
        PyObject_GetBuffer(buf, &ctx.view, PyBUF_RECORDS_RO)
    except BaseException:
        free(ctx)
        raise
    for i in range(ctx.view.ndim):
        ctx.shape[i] = ctx.view.shape[i]
        ctx.strides[i] = ctx.view.strides[i] // ctx.view.itemsize  # DLPack counts elements
    if versioned:
        vt = <mitk_DLManagedTensorVersioned *> malloc(sizeof(mitk_DLManagedTensorVersioned))
        if vt == NULL:
            PyBuffer_Release(&ctx.view)
            free(ctx)
            raise MemoryError()
        vt.version.major = DLPACK_VERSION[0]
        vt.version.minor = DLPACK_VERSION[1]
        vt.manager_ctx = ctx
        vt.deleter = _delete_versioned
        vt.flags = (FLAG_READ_ONLY if export_read_only else 0) | (FLAG_IS_COPIED if copied else 0)
        tensor = &vt.dl_tensor
    else:
        lt = <mitk_DLManagedTensor *> malloc(sizeof(mitk_DLManagedTensor))
        if lt == NULL:
            PyBuffer_Release(&ctx.view)
            free(ctx)
            raise MemoryError()
        lt.manager_ctx = ctx
        lt.deleter = _delete_legacy
        tensor = &lt.dl_tensor
    tensor.data = ctx.view.buf
    tensor.device.device_type = kDLCPU
    tensor.device.device_id = 0
    tensor.ndim = ctx.view.ndim
    tensor.dtype = _dtype_of(buf.dtype)
    tensor.shape = ctx.shape
    tensor.strides = ctx.strides
    tensor.byte_offset = 0
    if versioned:
        return PyCapsule_New(vt, b"dltensor_versioned", _capsule_versioned)
    return PyCapsule_New(lt, b"dltensor", _capsule_legacy)
