/* Status code -> static message.  Messages are plain ASCII: the Cython layer decodes them as such
 * and appends them to exception texts. */
#include "mitkbuf_internal.h"

const char *mitkbuf_strerror(int status)
{
    switch (status) {
    case MITKBUF_OK: return "success";
    case MITKBUF_ENOMEM: return "out of memory";
    case MITKBUF_EOVERFLOW: return "size does not fit in the address space";
    case MITKBUF_EINVAL: return "invalid argument";
    case MITKBUF_EBUSY: return "lock is held in a conflicting mode";
    case MITKBUF_ETIMEDOUT: return "timed out waiting for the lock";
    case MITKBUF_EDEADLK: return "the owner already holds a lock that blocks this request (would deadlock)";
    case MITKBUF_EPERM: return "the owner does not hold this lock";
    case MITKBUF_ESYS: return "a thread primitive failed";
    default: return "unknown mitkbuf error";
    }
}
