/* png.c - the report's PNG thumbnails through libpng's simplified write API. */
/* libpng16/ spelled out: -Iproto would find this directory's png.h for <png.h> */
#include <libpng16/png.h>
#include <string.h>

#include "png.h"
#include "segloss.h"

int slp_png_rgb(const unsigned char *rgb, int w, int h, struct slp_dynbuf *out)
{
    if (out->err) {
        return out->err;
    }
    if (w <= 0 || h <= 0 || w > (1 << 16) || h > (1 << 16)) {
        return SL_EINVAL;
    }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_RGB;
    /* the first call only measures; the second writes into room made for that size */
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&img, NULL, &size, 0, rgb, 0, NULL)) {
        png_image_free(&img);
        return SL_EINTERNAL;
    }
    char *at = slp_dynbuf_room(out, size);
    if (!at) {
        png_image_free(&img);
        return out->err;
    }
    png_alloc_size_t got = size;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_memory(&img, at, &got, 0, rgb, 0, NULL) || got > size) {
        png_image_free(&img);
        return SL_EINTERNAL;
    }
    slp_dynbuf_commit(out, got);
    png_image_free(&img);
    return 0;
}
