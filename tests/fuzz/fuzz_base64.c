/* fuzz_base64.c - libFuzzer target: slp_base64_decode on the fuzz bytes, with a cap taken from
 * the first byte, against a plain reference written here (one character at a time): the same
 * acceptance - the standard alphabet, up to 2 '=' of padding that must be what the length calls
 * for -, the same bytes, and for a text with a character outside the alphabet the offset of the
 * first one. This checks the 32-characters-a-step (AVX2) path and the table loop alike. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t cap = data[0] == 0xff ? (size_t)-1 : (size_t)data[0] * 16;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    unsigned char *out = NULL;
    size_t out_len = 0;
    char msg[256];
    int rc = slp_base64_decode(in, len, cap, &out, &out_len, "data", msg, sizeof msg);

    /* the reference: padding (up to 3 counted, so that excess is seen), length, characters */
    size_t pad = 0;
    while (pad < len && pad < 3 && in[len - 1 - pad] == '=') {
        pad++;
    }
    size_t n = len - pad, rem = n % 4, need = rem ? 4 - rem : 0;
    int bad_len = rem == 1 || pad > need || (pad != 0 && pad < need);
    size_t first_bad = SIZE_MAX;
    for (size_t i = 0; i < n && first_bad == SIZE_MAX; i++) {
        if (sextet((unsigned char)in[i]) < 0) {
            first_bad = i;
        }
    }
    size_t want_len = n / 4 * 3 + (rem ? rem - 1 : 0);
    if (first_bad != SIZE_MAX && (bad_len || want_len <= cap)) {
        char want[64];
        snprintf(want, sizeof want, "data: invalid base64 at offset %zu", first_bad);
        size_t wl = strlen(want);
        if (rc != SL_EMALFORMED || strncmp(msg, want, wl) != 0 ||
            (msg[wl] != '\0' && msg[wl] != ':')) {
            fprintf(stderr, "want '%s', got %d '%s'\n", want, rc, msg);
            abort();
        }
    } else if (bad_len) {
        if (rc != SL_EMALFORMED) {
            abort();
        }
    } else if (want_len > cap) {
        if (rc != SL_ETOOLARGE) {
            abort();
        }
    } else {
        if (rc != 0 || out_len != want_len) {
            abort();
        }
        uint32_t acc = 0;
        size_t bits = 0, k = 0;
        for (size_t i = 0; i < n; i++) {
            acc = acc << 6 | (uint32_t)sextet((unsigned char)in[i]);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                if (out[k++] != (unsigned char)(acc >> bits)) {
                    abort();
                }
            }
        }
        if (k != want_len) {
            abort();
        }
    }
    if (rc != 0 && (out != NULL || out_len != 0)) {
        abort();
    }
    free(out);
    return 0;
}
