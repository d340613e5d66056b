// Baseline JPEG encoding and decoding of plain image files on the system's libjpeg (libjpeg-turbo), for exported
// photos and for reading a watermark back from a file that left the clinic. DCMTK's own IJG copies (renamed
// jinit8_* symbols) stay for DICOM pixel data. Plain C because libjpeg reports errors with longjmp.

#include "CDCMTK.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *error;
    size_t error_capacity;
} jpeg_failure;

static void jpeg_on_error(j_common_ptr info) {
    jpeg_failure *failure = (jpeg_failure *)info->err;
    char message[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, message);
    if (failure->error != NULL && failure->error_capacity > 0) {
        snprintf(failure->error, failure->error_capacity, "JPEG refused: %s", message);
    }
    longjmp(failure->jump, 1);
}

static void jpeg_on_message(j_common_ptr info, int level) {
    (void)info;
    (void)level;
}

int cdcmtk_encode_jpeg(const uint8_t *rgb, uint32_t width, uint32_t height, int quality, uint8_t **out,
                       size_t *out_length, char *error, size_t error_capacity) {
    if (rgb == NULL || out == NULL || out_length == NULL || width == 0 || height == 0 || width > 65500 ||
        height > 65500 || quality < 1 || quality > 100) {
        if (error != NULL && error_capacity > 0) snprintf(error, error_capacity, "JPEG encoding: bad arguments");
        return CDCMTK_ERR_UNSUPPORTED;
    }
    struct jpeg_compress_struct info;
    jpeg_failure failure;
    memset(&info, 0, sizeof info);
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_on_error;
    failure.manager.emit_message = jpeg_on_message;
    failure.error = error;
    failure.error_capacity = error_capacity;
    unsigned char *volatile buffer = NULL;
    unsigned long volatile length = 0;
    if (setjmp(failure.jump)) {
        jpeg_destroy_compress(&info);
        free(buffer);
        return CDCMTK_ERR_MALFORMED;
    }
    jpeg_create_compress(&info);
    jpeg_mem_dest(&info, (unsigned char **)&buffer, (unsigned long *)&length);
    info.image_width = width;
    info.image_height = height;
    info.input_components = 3;
    info.in_color_space = JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    // A plain JFIF file: no EXIF, XMP, ICC or comment marker is written.
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)info.next_scanline * width * 3);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    *out = buffer;
    *out_length = length;
    return CDCMTK_OK;
}

int cdcmtk_decode_jpeg_file(const uint8_t *jpeg, size_t length, uint32_t max_dimension, uint64_t max_pixels,
                            uint32_t *out_width, uint32_t *out_height, uint8_t **out_pixels, size_t *out_length,
                            char *error, size_t error_capacity) {
    if (jpeg == NULL || length < 4 || out_pixels == NULL || out_length == NULL) {
        if (error != NULL && error_capacity > 0) snprintf(error, error_capacity, "JPEG refused: empty input");
        return CDCMTK_ERR_UNSUPPORTED;
    }
    struct jpeg_decompress_struct info;
    jpeg_failure failure;
    memset(&info, 0, sizeof info);
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_on_error;
    failure.manager.emit_message = jpeg_on_message;
    failure.error = error;
    failure.error_capacity = error_capacity;
    uint8_t *volatile pixels = NULL;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&info);
        free(pixels);
        return CDCMTK_ERR_MALFORMED;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, jpeg, (unsigned long)length);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = JCS_RGB;
    if (info.image_width == 0 || info.image_height == 0 || info.image_width > max_dimension ||
        info.image_height > max_dimension || (uint64_t)info.image_width * info.image_height > max_pixels) {
        if (error != NULL && error_capacity > 0) snprintf(error, error_capacity, "JPEG refused: too large");
        jpeg_destroy_decompress(&info);
        return CDCMTK_ERR_LIMIT;
    }
    jpeg_start_decompress(&info);
    size_t stride = (size_t)info.output_width * 3;
    size_t total = stride * info.output_height;
    pixels = (uint8_t *)malloc(total);
    if (pixels == NULL) {
        jpeg_destroy_decompress(&info);
        return CDCMTK_ERR_MEMORY;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)info.output_scanline * stride);
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    *out_width = info.output_width;
    *out_height = info.output_height;
    jpeg_destroy_decompress(&info);
    *out_pixels = pixels;
    *out_length = total;
    return CDCMTK_OK;
}
