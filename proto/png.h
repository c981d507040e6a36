/* png.h - PNG files of 8-bit RGB pixels, written by libpng's simplified API (Debian's libpng16);
 * the report's thumbnails. */
#ifndef SEGLOSS_PNG_H
#define SEGLOSS_PNG_H

#include "dynbuf.h"

/* Appends the PNG file of the w x h image rgb (row-major, 3 bytes a pixel, no padding;
 * borrowed) to out. Returns 0, SL_EINVAL (w or h not positive or over 1 << 16), SL_EINTERNAL
 * (libpng refused: the message is lost, there is none for a user), or out's error (SL_ENOMEM,
 * SL_ETOOLARGE). */
int slp_png_rgb(const unsigned char *rgb, int w, int h, struct slp_dynbuf *out);

#endif
