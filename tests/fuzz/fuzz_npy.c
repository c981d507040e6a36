/* fuzz_npy.c - libFuzzer target: slp_npy_header on raw bytes. A header it accepts must describe
 * a dtype and a shape within the API's bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum sl_dtype dtype;
    int ndim = -1, fortran = -1;
    int64_t shape[SL_MAX_DIMS];
    size_t off = 0;
    char msg[256];
    int rc =
        slp_npy_header(data, size, &dtype, &ndim, shape, &fortran, &off, "npy", msg, sizeof msg);
    if (rc == 0) {
        if (ndim < 0 || ndim > SL_MAX_DIMS || (fortran != 0 && fortran != 1) || off > size) {
            abort();
        }
        for (int i = 0; i < ndim; i++) {
            if (shape[i] < 0) {
                abort();
            }
        }
    }
    return 0;
}
