// PNG decoding on libpng (DCMTK 3.6.7 has no PNG image source). Plain C because libpng reports errors with
// longjmp, which must not cross C++ frames.

#include "CDCMTK.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *bytes;
    size_t length;
    size_t offset;
    char *error;
    size_t error_capacity;
} png_source;

static void source_read(png_structp png, png_bytep target, png_size_t count) {
    png_source *source = (png_source *)png_get_io_ptr(png);
    if (count > source->length - source->offset) {
        png_error(png, "file is truncated");
    }
    memcpy(target, source->bytes + source->offset, count);
    source->offset += count;
}

static void on_error(png_structp png, png_const_charp message) {
    png_source *source = (png_source *)png_get_error_ptr(png);
    if (source->error != NULL && source->error_capacity > 0) {
        snprintf(source->error, source->error_capacity, "PNG refused: %s", message);
    }
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

int cdcmtk_decode_png(const uint8_t *bytes, size_t length, uint32_t max_dimension, uint64_t max_pixels,
                      cdcmtk_png_info *info_out, uint8_t **out_pixels, size_t *out_length, char *error,
                      size_t error_capacity) {
    if (length < 8 || png_sig_cmp(bytes, 0, 8) != 0) {
        snprintf(error, error_capacity, "not a PNG file: signature missing");
        return CDCMTK_ERR_UNSUPPORTED;
    }
    // Read the IHDR dimensions ourselves first, so that an oversized header is refused with a clear reason
    // before libpng allocates anything.
    if (length >= 24 && memcmp(bytes + 12, "IHDR", 4) == 0) {
        uint32_t w = (uint32_t)bytes[16] << 24 | (uint32_t)bytes[17] << 16 | (uint32_t)bytes[18] << 8 | bytes[19];
        uint32_t h = (uint32_t)bytes[20] << 24 | (uint32_t)bytes[21] << 16 | (uint32_t)bytes[22] << 8 | bytes[23];
        if (w > max_dimension || h > max_dimension || (uint64_t)w * (uint64_t)h > max_pixels) {
            snprintf(error, error_capacity,
                     "PNG refused: %ux%u pixels exceeds the limit (%u per side, %llu in all)", (unsigned)w,
                     (unsigned)h, (unsigned)max_dimension, (unsigned long long)max_pixels);
            return CDCMTK_ERR_LIMIT;
        }
    }
    png_source source = {bytes, length, 0, error, error_capacity};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, on_error, on_warning);
    if (png == NULL) return CDCMTK_ERR_MEMORY;
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        return CDCMTK_ERR_MEMORY;
    }
    // Volatile: assigned after setjmp and read after a longjmp.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = CDCMTK_ERR_MALFORMED;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return status;
    }
    png_set_read_fn(png, &source, source_read);
    png_set_user_limits(png, max_dimension, max_dimension);
    // Bounds on ancillary chunks: a hostile file cannot make libpng buffer unbounded text or profiles.
    png_set_chunk_cache_max(png, 256);
    png_set_chunk_malloc_max(png, 16u << 20);
    status = CDCMTK_ERR_LIMIT;
    png_read_info(png, info);
    status = CDCMTK_ERR_MALFORMED;

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if ((uint64_t)width * (uint64_t)height > max_pixels) {
        snprintf(error, error_capacity, "PNG refused: %ux%u pixels exceeds the limit of %llu pixels",
                 (unsigned)width, (unsigned)height, (unsigned long long)max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return CDCMTK_ERR_LIMIT;
    }
    int had_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) {
        png_set_tRNS_to_alpha(png);
        had_alpha = 1;
    }
    if (bit_depth == 16) png_set_scale_16(png);
    int passes = png_set_interlace_handling(png);
    (void)passes;
    png_read_update_info(png, info);

    size_t channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || row_bytes != (size_t)width * channels) {
        snprintf(error, error_capacity, "PNG refused: unexpected layout after conversion");
        png_destroy_read_struct(&png, &info, NULL);
        return CDCMTK_ERR_UNSUPPORTED;
    }
    pixels = malloc(row_bytes * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return CDCMTK_ERR_MEMORY;
    }
    for (png_uint_32 y = 0; y < height; ++y) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    rows = NULL;

    // Composite alpha over white and drop it; gray stays one sample.
    size_t color_channels = (channels == 1 || channels == 2) ? 1 : 3;
    if (channels == 2 || channels == 4) {
        size_t count = (size_t)width * height;
        uint8_t *source_px = pixels;
        uint8_t *target_px = pixels;
        for (size_t i = 0; i < count; ++i) {
            unsigned alpha = source_px[color_channels];
            for (size_t c = 0; c < color_channels; ++c) {
                unsigned value = source_px[c];
                target_px[c] = (uint8_t)((value * alpha + 255u * (255u - alpha) + 127u) / 255u);
            }
            source_px += channels;
            target_px += color_channels;
        }
    }
    info_out->width = width;
    info_out->height = height;
    info_out->samples_per_pixel = (uint8_t)color_channels;
    info_out->source_bit_depth = (uint8_t)bit_depth;
    info_out->source_color_type = (uint8_t)color_type;
    info_out->had_alpha = (uint8_t)had_alpha;
    info_out->was_interlaced = interlace != PNG_INTERLACE_NONE;
    *out_pixels = pixels;
    *out_length = (size_t)width * height * color_channels;
    png_destroy_read_struct(&png, &info, NULL);
    return CDCMTK_OK;
}

typedef struct {
    uint8_t *bytes;
    size_t length;
    size_t capacity;
    int failed;
    char *error;
    size_t error_capacity;
} png_sink;

static void sink_write(png_structp png, png_bytep data, png_size_t count) {
    png_sink *sink = (png_sink *)png_get_io_ptr(png);
    if (count > SIZE_MAX - sink->length) png_error(png, "output too large");
    if (sink->length + count > sink->capacity) {
        size_t capacity = sink->capacity ? sink->capacity : 65536;
        while (capacity < sink->length + count) capacity *= 2;
        uint8_t *grown = realloc(sink->bytes, capacity);
        if (grown == NULL) png_error(png, "out of memory");
        sink->bytes = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->bytes + sink->length, data, count);
    sink->length += count;
}

static void sink_flush(png_structp png) { (void)png; }

static void on_write_error(png_structp png, png_const_charp message) {
    png_sink *sink = (png_sink *)png_get_error_ptr(png);
    if (sink->error != NULL && sink->error_capacity > 0) {
        snprintf(sink->error, sink->error_capacity, "PNG not written: %s", message);
    }
    png_longjmp(png, 1);
}

int cdcmtk_encode_png(const uint8_t *pixels, uint32_t width, uint32_t height, uint8_t samples_per_pixel,
                      uint8_t **out, size_t *out_length, char *error, size_t error_capacity) {
    *out = NULL;
    *out_length = 0;
    if (width == 0 || height == 0 || width > 65535 || height > 65535 ||
        (samples_per_pixel != 3 && samples_per_pixel != 4)) {
        snprintf(error, error_capacity, "PNG not written: %ux%u pixels, %u samples", (unsigned)width,
                 (unsigned)height, (unsigned)samples_per_pixel);
        return CDCMTK_ERR_UNSUPPORTED;
    }
    // On the heap: the sink changes between setjmp and a longjmp, and the pointer to it does not.
    png_sink *sink = calloc(1, sizeof(png_sink));
    if (sink == NULL) return CDCMTK_ERR_MEMORY;
    sink->error = error;
    sink->error_capacity = error_capacity;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, sink, on_write_error, on_warning);
    if (png == NULL) {
        free(sink);
        return CDCMTK_ERR_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        free(sink);
        return CDCMTK_ERR_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        free(sink->bytes);
        free(sink);
        png_destroy_write_struct(&png, &info);
        return CDCMTK_ERR_MALFORMED;
    }
    png_set_write_fn(png, sink, sink_write, sink_flush);
    png_set_compression_level(png, 6);
    png_set_IHDR(png, info, width, height, 8, samples_per_pixel == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * samples_per_pixel;
    for (uint32_t row = 0; row < height; row++) {
        png_write_row(png, (png_const_bytep)(pixels + (size_t)row * stride));
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = sink->bytes;
    *out_length = sink->length;
    free(sink);
    return CDCMTK_OK;
}
