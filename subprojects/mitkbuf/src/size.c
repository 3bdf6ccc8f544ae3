/* Overflow-checked size arithmetic: an overflow is an error code, never a wrap-around. */
#include "mitkbuf_internal.h"

int mitkbuf_size_mul(size_t a, size_t b, size_t *out)
{
    if (out == NULL)
        return MITKBUF_EINVAL;
    if (a != 0 && b > SIZE_MAX / a)
        return MITKBUF_EOVERFLOW;
    *out = a * b;
    return MITKBUF_OK;
}

int mitkbuf_size_product(const size_t *sizes, int n, size_t itemsize, size_t *out)
{
    size_t total = 1;
    int any_zero = itemsize == 0;
    if (out == NULL || n < 0 || (n > 0 && sizes == NULL))
        return MITKBUF_EINVAL;
    /* The product of the nonzero factors is checked even when some factor is zero: a shape whose
     * other extents cannot be addressed is refused, not silently accepted as empty. */
    if (itemsize != 0)
        total = itemsize;
    for (int i = 0; i < n; i++) {
        if (sizes[i] == 0) {
            any_zero = 1;
            continue;
        }
        if (mitkbuf_size_mul(total, sizes[i], &total) != MITKBUF_OK)
            return MITKBUF_EOVERFLOW;
    }
    /* Byte offsets and Py_ssize_t lengths are signed. */
    if (total > (size_t)PTRDIFF_MAX)
        return MITKBUF_EOVERFLOW;
    *out = any_zero ? 0 : total;
    return MITKBUF_OK;
}
