/* Overflow-checked size arithmetic at its edges, and the status messages. */
#include "check.h"
#include "mitkbuf.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

static const size_t PMAX = (size_t)PTRDIFF_MAX;

static void test_mul(void)
{
    size_t out = 7;
    CHECK(mitkbuf_size_mul(0, 0, &out) == MITKBUF_OK && out == 0, "mul: 0 * 0 = 0");
    CHECK(mitkbuf_size_mul(0, SIZE_MAX, &out) == MITKBUF_OK && out == 0, "mul: 0 * SIZE_MAX = 0");
    CHECK(mitkbuf_size_mul(SIZE_MAX, 0, &out) == MITKBUF_OK && out == 0, "mul: SIZE_MAX * 0 = 0");
    CHECK(mitkbuf_size_mul(1, SIZE_MAX, &out) == MITKBUF_OK && out == SIZE_MAX,
          "mul: 1 * SIZE_MAX fits");
    CHECK(mitkbuf_size_mul(SIZE_MAX, 1, &out) == MITKBUF_OK && out == SIZE_MAX,
          "mul: SIZE_MAX * 1 fits");
    CHECK(mitkbuf_size_mul(2, SIZE_MAX / 2, &out) == MITKBUF_OK && out == SIZE_MAX - 1,
          "mul: 2 * (SIZE_MAX / 2) fits");
    out = 7;
    CHECK(mitkbuf_size_mul(2, SIZE_MAX / 2 + 1, &out) == MITKBUF_EOVERFLOW && out == 7,
          "mul: 2 * (SIZE_MAX / 2 + 1) overflows and leaves *out unchanged");
    CHECK(mitkbuf_size_mul(SIZE_MAX, SIZE_MAX, &out) == MITKBUF_EOVERFLOW,
          "mul: SIZE_MAX * SIZE_MAX overflows");
#if SIZE_MAX == UINT64_MAX
    CHECK(mitkbuf_size_mul(0xFFFFFFFFu, (size_t)0x100000001u, &out) == MITKBUF_OK &&
              out == SIZE_MAX,
          "mul: (2^32 - 1) * (2^32 + 1) = SIZE_MAX exactly");
    CHECK(mitkbuf_size_mul((size_t)1 << 32, (size_t)1 << 32, &out) == MITKBUF_EOVERFLOW,
          "mul: 2^32 * 2^32 overflows");
#endif
    CHECK(mitkbuf_size_mul(3, 4, NULL) == MITKBUF_EINVAL, "mul: NULL out is EINVAL");
}

static void test_product(void)
{
    size_t out = 7;
    size_t s[4];

    s[0] = 10; s[1] = 20; s[2] = 30;
    CHECK(mitkbuf_size_product(s, 3, 4, &out) == MITKBUF_OK && out == 24000,
          "product: 10 * 20 * 30 * 4");
    CHECK(mitkbuf_size_product(s, 0, 8, &out) == MITKBUF_OK && out == 8, "product: n == 0 gives itemsize");
    CHECK(mitkbuf_size_product(NULL, 0, 8, &out) == MITKBUF_OK && out == 8,
          "product: NULL sizes are fine with n == 0");
    CHECK(mitkbuf_size_product(NULL, 0, 0, &out) == MITKBUF_OK && out == 0,
          "product: n == 0, itemsize 0 gives 0");
    s[0] = 1;
    CHECK(mitkbuf_size_product(s, 1, 1, &out) == MITKBUF_OK && out == 1, "product: 1 * 1 = 1");
    out = 7;
    CHECK(mitkbuf_size_product(NULL, 2, 8, &out) == MITKBUF_EINVAL && out == 7,
          "product: NULL sizes with n > 0 is EINVAL");
    CHECK(mitkbuf_size_product(s, -1, 8, &out) == MITKBUF_EINVAL, "product: negative n is EINVAL");
    CHECK(mitkbuf_size_product(s, 1, 4, NULL) == MITKBUF_EINVAL, "product: NULL out is EINVAL");

    s[0] = 0; s[1] = 5;
    CHECK(mitkbuf_size_product(s, 2, 4, &out) == MITKBUF_OK && out == 0, "product: a zero size gives 0");
    s[0] = 3; s[1] = 5;
    CHECK(mitkbuf_size_product(s, 2, 0, &out) == MITKBUF_OK && out == 0, "product: itemsize 0 gives 0");
    s[0] = 0; s[1] = SIZE_MAX; s[2] = SIZE_MAX;
    out = 7;
    CHECK(mitkbuf_size_product(s, 3, 1, &out) == MITKBUF_EOVERFLOW && out == 7,
          "product: a zero size does not hide an overflow of the other factors");
    s[0] = SIZE_MAX; s[1] = 2;
    CHECK(mitkbuf_size_product(s, 2, 0, &out) == MITKBUF_EOVERFLOW,
          "product: itemsize 0 does not hide an overflow either");
    s[0] = 0; s[1] = PMAX + 1;
    CHECK(mitkbuf_size_product(s, 2, 1, &out) == MITKBUF_EOVERFLOW,
          "product: a zero size does not hide factors beyond PTRDIFF_MAX");

    /* The PTRDIFF_MAX boundary: byte offsets are signed. */
    s[0] = PMAX; s[1] = 1;
    CHECK(mitkbuf_size_product(s, 2, 1, &out) == MITKBUF_OK && out == PMAX, "product: PTRDIFF_MAX bytes fit");
    CHECK(mitkbuf_size_product(s, 2, 2, &out) == MITKBUF_EOVERFLOW,
          "product: 2 * PTRDIFF_MAX fits size_t but not ptrdiff_t");
    s[0] = PMAX + 1;
    CHECK(mitkbuf_size_product(s, 1, 1, &out) == MITKBUF_EOVERFLOW, "product: PTRDIFF_MAX + 1 bytes do not");
    CHECK(mitkbuf_size_product(NULL, 0, PMAX + 1, &out) == MITKBUF_EOVERFLOW,
          "product: an itemsize beyond PTRDIFF_MAX does not");
    s[0] = PMAX / 8; /* (PTRDIFF_MAX / 8) * 8 = PTRDIFF_MAX - 7 */
    CHECK(mitkbuf_size_product(s, 1, 8, &out) == MITKBUF_OK && out == PMAX - 7,
          "product: largest multiple of 8 below PTRDIFF_MAX fits");
    s[0] = PMAX / 8 + 1;
    CHECK(mitkbuf_size_product(s, 1, 8, &out) == MITKBUF_EOVERFLOW, "product: one more element does not");
    s[0] = SIZE_MAX;
    CHECK(mitkbuf_size_product(s, 1, 1, &out) == MITKBUF_EOVERFLOW, "product: SIZE_MAX bytes do not fit");
    s[0] = SIZE_MAX; s[1] = SIZE_MAX;
    CHECK(mitkbuf_size_product(s, 2, 1, &out) == MITKBUF_EOVERFLOW, "product: SIZE_MAX^2 overflows size_t");
#if SIZE_MAX == UINT64_MAX
    s[0] = (size_t)1 << 31; s[1] = (size_t)1 << 31; s[2] = (size_t)1 << 31;
    CHECK(mitkbuf_size_product(s, 3, 8, &out) == MITKBUF_EOVERFLOW, "product: 2^93 bytes overflow");
    s[0] = (size_t)1 << 20; s[1] = (size_t)1 << 20; s[2] = (size_t)1 << 20; s[3] = 4;
    CHECK(mitkbuf_size_product(s, 4, 1, &out) == MITKBUF_OK && out == (size_t)1 << 62,
          "product: 2^62 bytes over four dimensions fit");
    CHECK(mitkbuf_size_product(s, 4, 2, &out) == MITKBUF_EOVERFLOW,
          "product: 2^63 bytes over four dimensions do not");
#endif
}

static void test_strerror(void)
{
    const int codes[] = {MITKBUF_OK,     MITKBUF_ENOMEM,    MITKBUF_EOVERFLOW,
                         MITKBUF_EINVAL, MITKBUF_EBUSY,     MITKBUF_ETIMEDOUT,
                         MITKBUF_EDEADLK, MITKBUF_EPERM,    MITKBUF_ESYS};
    const int n = (int)(sizeof codes / sizeof codes[0]);
    const char *unknown = "unknown mitkbuf error";
    char what[64];
    for (int i = 0; i < n; i++) {
        const char *m = mitkbuf_strerror(codes[i]);
        int ascii = m != NULL;
        for (const char *c = m; ascii && *c; c++)
            ascii = (unsigned char)*c >= 32 && (unsigned char)*c < 127;
        snprintf(what, sizeof what, "strerror(%d) is a non-empty ASCII message", codes[i]);
        CHECK(ascii && m[0] != '\0' && strcmp(m, unknown) != 0, what);
        for (int j = 0; j < i; j++)
            if (strcmp(m, mitkbuf_strerror(codes[j])) == 0) {
                snprintf(what, sizeof what, "strerror(%d) equals strerror(%d)", codes[i], codes[j]);
                CHECK(0, what);
            }
    }
    CHECK(strcmp(mitkbuf_strerror(-1), unknown) == 0, "strerror(-1) is the unknown message");
    CHECK(strcmp(mitkbuf_strerror(9), unknown) == 0, "strerror(9) is the unknown message");
    CHECK(strcmp(mitkbuf_strerror(INT_MAX), unknown) == 0, "strerror(INT_MAX) is the unknown message");
    CHECK(strcmp(mitkbuf_strerror(INT_MIN), unknown) == 0, "strerror(INT_MIN) is the unknown message");
}

int main(void)
{
    test_mul();
    test_product();
    test_strerror();
    return finish();
}
