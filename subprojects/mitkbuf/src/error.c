/* Status code -> static message. */
#include "mitkbuf.h"

const char *mitkbuf_strerror(int status)
{
    switch (status) {
    case MITKBUF_OK: return "success";
    case MITKBUF_ENOMEM: return "out of memory";
    case MITKBUF_EOVERFLOW: return "size overflows the address space";
    case MITKBUF_EINVAL: return "invalid argument";
    case MITKBUF_EBUSY: return "lock is busy";
    case MITKBUF_ETIMEDOUT: return "lock wait timed out";
    case MITKBUF_EDEADLK: return "the calling owner already holds a conflicting lock (would deadlock)";
    case MITKBUF_EPERM: return "lock is not held by this owner";
    case MITKBUF_ESYS: return "system error in a thread primitive";
    default: return "unknown mitkbuf error";
    }
}
