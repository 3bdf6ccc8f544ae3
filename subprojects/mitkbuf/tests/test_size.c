/* Overflow-checked size arithmetic at its edges. */
#include "check.h"
#include "mitkbuf.h"

#include <stdint.h>
#include <string.h>

int main(void)
{
    size_t out = 7;
    size_t sizes[4];

    CHECK(mitkbuf_size_mul(0, SIZE_MAX, &out) == MITKBUF_OK && out == 0, "0 * max");
    CHECK(mitkbuf_size_mul(1, SIZE_MAX, &out) == MITKBUF_OK && out == SIZE_MAX, "1 * max");
    CHECK(mitkbuf_size_mul(2, SIZE_MAX / 2, &out) == MITKBUF_OK, "2 * max/2 fits");
    out = 7;
    CHECK(mitkbuf_size_mul(2, SIZE_MAX / 2 + 1, &out) == MITKBUF_EOVERFLOW && out == 7,
          "2 * (max/2 + 1) overflows and leaves out unchanged");
    CHECK(mitkbuf_size_mul(SIZE_MAX, SIZE_MAX, &out) == MITKBUF_EOVERFLOW, "max * max");
    CHECK(mitkbuf_size_mul(3, 4, NULL) == MITKBUF_EINVAL, "NULL out");

    sizes[0] = 10; sizes[1] = 20; sizes[2] = 30;
    CHECK(mitkbuf_size_product(sizes, 3, 4, &out) == MITKBUF_OK && out == 24000, "10*20*30*4");
    CHECK(mitkbuf_size_product(sizes, 0, 8, &out) == MITKBUF_OK && out == 8, "n == 0 gives itemsize");
    CHECK(mitkbuf_size_product(NULL, 0, 8, &out) == MITKBUF_OK && out == 8, "NULL sizes with n == 0");
    CHECK(mitkbuf_size_product(NULL, 2, 8, &out) == MITKBUF_EINVAL, "NULL sizes with n > 0");
    CHECK(mitkbuf_size_product(sizes, -1, 8, &out) == MITKBUF_EINVAL, "negative n");
    CHECK(mitkbuf_size_product(sizes, 3, 4, NULL) == MITKBUF_EINVAL, "NULL out");

    sizes[0] = 0; sizes[1] = 5;
    CHECK(mitkbuf_size_product(sizes, 2, 4, &out) == MITKBUF_OK && out == 0, "a zero size gives 0");
    sizes[0] = 0; sizes[1] = SIZE_MAX; sizes[2] = SIZE_MAX;
    CHECK(mitkbuf_size_product(sizes, 3, 1, &out) == MITKBUF_EOVERFLOW,
          "zero size does not hide an overflow of the other factors");

    sizes[0] = (size_t)PTRDIFF_MAX; sizes[1] = 1;
    CHECK(mitkbuf_size_product(sizes, 2, 1, &out) == MITKBUF_OK && out == (size_t)PTRDIFF_MAX,
          "PTRDIFF_MAX bytes fit");
    CHECK(mitkbuf_size_product(sizes, 2, 2, &out) == MITKBUF_EOVERFLOW, "2 * PTRDIFF_MAX does not");
    sizes[0] = (size_t)PTRDIFF_MAX + 1;
    CHECK(mitkbuf_size_product(sizes, 1, 1, &out) == MITKBUF_EOVERFLOW,
          "PTRDIFF_MAX + 1 bytes exceed the signed range");
    sizes[0] = (size_t)1 << 31; sizes[1] = (size_t)1 << 31; sizes[2] = (size_t)1 << 31;
    CHECK(mitkbuf_size_product(sizes, 3, 8, &out) == MITKBUF_EOVERFLOW, "2^93 bytes");

    for (int code = 0; code <= 9; code++)
        CHECK(mitkbuf_strerror(code) != NULL && strlen(mitkbuf_strerror(code)) > 0, "strerror");
    CHECK(strcmp(mitkbuf_strerror(-5), "unknown mitkbuf error") == 0, "unknown code");
    return finish();
}
