/*
 * CDCMTK: Facet's only door to DCMTK and libpng.
 *
 * Plain C. No DCMTK type and no C++ exception crosses this header. Every function returns a status code
 * (CDCMTK_OK on success) and, on failure, writes one readable line into the caller's `error` buffer. Buffers
 * returned through `out` pointers are allocated here and freed by the caller with cdcmtk_free().
 */
#ifndef CDCMTK_H
#define CDCMTK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CDCMTK_OK = 0,
    CDCMTK_ERR_INIT = 1,        /* DICOM dictionary not loaded, or codecs could not register */
    CDCMTK_ERR_NOT_DICOM = 2,   /* input is not a DICOM Part-10 file */
    CDCMTK_ERR_MALFORMED = 3,   /* DICOM that DCMTK cannot parse (truncated, bad lengths, ...) */
    CDCMTK_ERR_IO = 4,          /* file could not be read or written */
    CDCMTK_ERR_UNSUPPORTED = 5, /* well-formed input that Facet does not accept */
    CDCMTK_ERR_LIMIT = 6,       /* input exceeds a configured limit (dimensions, sizes) */
    CDCMTK_ERR_MEMORY = 7,
    CDCMTK_ERR_NO_SUCH_FRAME = 8, /* a frame number at or beyond the object's real number of frames */
};

/* Deepest nesting of sequences (SQ elements, and values of undefined length) any reader accepts: the number of
 * nested sequence levels, the top-level dataset being level 0. DICOMCore's DICOMJSON.maximumDepth is the same
 * number with the same meaning (DICOMCodec refuses to initialise if they differ), so that an object the shim reads
 * can always be written to and read back from the index's DICOM JSON. */
enum { CDCMTK_MAXIMUM_NESTING = 32 };

/* Decoded pixel data one render may imply for the whole object (rows x columns x frames x samples x bits
 * allocated / 8), and pixels of one frame: checked before anything is decoded. */
#define CDCMTK_MAXIMUM_DECODED_BYTES (1ull << 30)
#define CDCMTK_MAXIMUM_FRAME_PIXELS 200000000ull

/* Loads nothing twice; safe to call from several threads. Returns CDCMTK_ERR_INIT when DCMTK's data
 * dictionary is not loaded (DCMDICTPATH wrong or the dcmtk data package missing). Silences DCMTK's own logger. */
int cdcmtk_initialize(char *error, size_t error_capacity);

/* Frees any buffer this library returned. */
void cdcmtk_free(void *buffer);

/*
 * Walk format produced by the readers, little endian, one record after another:
 *   1 element:        u16 group, u16 element, char vr[2], u8 is_bulk, u32 length, value[length] unless is_bulk
 *   2 sequence start: u16 group, u16 element
 *   3 item start
 *   4 item end
 *   5 sequence end
 * Values are the element's bytes in Explicit VR Little Endian form; text is converted to UTF-8 where DCMTK
 * can. Values longer than bulk_threshold (binary VRs, encapsulated pixel data) are reported with their length
 * only and never loaded. The File Meta Information (group 0002) comes first.
 */
int cdcmtk_read_file(const char *path, uint32_t bulk_threshold, uint8_t **out, size_t *out_length, char *error,
                     size_t error_capacity);
int cdcmtk_read_buffer(const uint8_t *buffer, size_t length, uint32_t bulk_threshold, uint8_t **out,
                       size_t *out_length, char *error, size_t error_capacity);

/* Reads one element's full value (for example the Encapsulated Document) from a Part-10 file without loading the
 * rest of the bulk data. The tag must be at the top level of the dataset. */
int cdcmtk_read_element_value(const char *path, uint16_t group, uint16_t element, uint8_t **out,
                              size_t *out_length, char *error, size_t error_capacity);

/* Writes a Part-10 file. `dataset` is the dataset without File Meta Information, encoded as Explicit VR Little
 * Endian (encapsulated Pixel Data as an undefined-length OB item sequence when the transfer syntax is
 * encapsulated). DCMTK parses it, builds the File Meta Information for `transfer_syntax_uid`, writes to a
 * temporary file beside `path`, fsyncs it and renames it into place, so that `path` is either whole or absent. */
int cdcmtk_write_part10(const uint8_t *dataset, size_t dataset_length, const char *transfer_syntax_uid,
                        const char *path, char *error, size_t error_capacity);

/* Decodes one JPEG frame (as it would be stored encapsulated under `transfer_syntax_uid`) to interleaved
 * 8-bit pixels with DCMTK's IJG decoder. YCbCr input is converted to RGB. `photometric` is the interpretation of
 * the compressed data (YBR_FULL, YBR_FULL_422, RGB, MONOCHROME2). */
int cdcmtk_decode_jpeg(const uint8_t *jpeg, size_t length, const char *transfer_syntax_uid, uint16_t rows,
                       uint16_t columns, uint16_t samples_per_pixel, const char *photometric, uint8_t **out_pixels,
                       size_t *out_length, char *error, size_t error_capacity);

/* Result of decoding a PNG. */
typedef struct cdcmtk_png_info {
    uint32_t width;
    uint32_t height;
    uint8_t samples_per_pixel; /* 1 (gray) or 3 (RGB) after conversion */
    uint8_t source_bit_depth;  /* as in IHDR */
    uint8_t source_color_type; /* as in IHDR: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA */
    uint8_t had_alpha;         /* alpha channel or tRNS present: composited over white */
    uint8_t was_interlaced;
} cdcmtk_png_info;

/* Decodes a PNG with libpng into interleaved 8-bit gray or RGB. Dimensions are checked against max_dimension
 * (each side) and max_pixels before any pixel buffer is allocated. Palette is expanded, 1/2/4-bit gray widened,
 * 16-bit scaled to 8-bit with rounding, alpha composited over white. */
int cdcmtk_decode_png(const uint8_t *png, size_t length, uint32_t max_dimension, uint64_t max_pixels,
                      cdcmtk_png_info *info, uint8_t **out_pixels, size_t *out_length, char *error,
                      size_t error_capacity);

/* Encodes interleaved 8-bit RGB (3 samples per pixel) or RGBA (4) as a PNG with libpng (zlib level 6, no
 * filter heuristics beyond libpng's default). *out is malloc'd; the caller frees it. */
int cdcmtk_encode_png(const uint8_t *pixels, uint32_t width, uint32_t height, uint8_t samples_per_pixel,
                      uint8_t **out, size_t *out_length, char *error, size_t error_capacity);

/* Encodes interleaved 8-bit RGB as a baseline JFIF JPEG (libjpeg, 4:2:0, no EXIF/XMP/ICC or comment markers) at
 * `quality` 1-100. *out is malloc'd; the caller frees it. */
int cdcmtk_encode_jpeg(const uint8_t *rgb, uint32_t width, uint32_t height, int quality, uint8_t **out,
                       size_t *out_length, char *error, size_t error_capacity);

/* Decodes a JPEG file (any libjpeg reads: baseline, progressive, gray or YCbCr) to interleaved 8-bit RGB.
 * Dimensions are checked against max_dimension (each side) and max_pixels before any pixel buffer is allocated. */
int cdcmtk_decode_jpeg_file(const uint8_t *jpeg, size_t length, uint32_t max_dimension, uint64_t max_pixels,
                            uint32_t *out_width, uint32_t *out_height, uint8_t **out_pixels, size_t *out_length,
                            char *error, size_t error_capacity);

/* As cdcmtk_write_part10, but returns the Part-10 file in memory (for storing it encrypted). */
int cdcmtk_encode_part10(const uint8_t *dataset, size_t dataset_length, const char *transfer_syntax_uid,
                         uint8_t **out, size_t *out_length, char *error, size_t error_capacity);

/* One top-level element's value (for example the Encapsulated Document) of a Part-10 file held in memory, in
 * little-endian byte order. Encapsulated Pixel Data is refused: use cdcmtk_frame. */
int cdcmtk_element_value(const uint8_t *part10, size_t length, uint16_t group, uint16_t element, uint8_t **out,
                         size_t *out_length, char *error, size_t error_capacity);

/* The bytes of one frame (0-based) of a Part-10 file held in memory, as stored: the compressed bitstream of an
 * encapsulated frame (all fragments of a single-frame image, or the frame's own fragment), or the frame's slice of
 * native Pixel Data. CDCMTK_ERR_NO_SUCH_FRAME for a frame the object does not have. */
int cdcmtk_frame(const uint8_t *part10, size_t length, uint32_t frame, uint8_t **out, size_t *out_length, char *error,
                 size_t error_capacity);

/* Several frames (0-based, in the order given, repeats allowed) of a Part-10 file held in memory, parsed once. The
 * frames are concatenated into `*out`; `frame_lengths` (caller-allocated, `frame_count` entries) receives each
 * frame's length. CDCMTK_ERR_NO_SUCH_FRAME if any number is at or beyond the real number of frames. */
int cdcmtk_frames(const uint8_t *part10, size_t length, const uint32_t *frames, size_t frame_count, uint8_t **out,
                  size_t *out_length, size_t *frame_lengths, char *error, size_t error_capacity);

/* The real number of frames of a Part-10 file held in memory: 0 without Pixel Data; otherwise Number of Frames
 * (1 when absent) as far as the pixel data actually holds them (native: whole frames present; encapsulated: one
 * fragment per frame, or all fragments for a single frame). */
int cdcmtk_number_of_frames(const uint8_t *part10, size_t length, uint32_t *out_frames, char *error,
                            size_t error_capacity);

/* Re-encodes a Part-10 file held in memory under another transfer syntax (for WADO-RS: Implicit VR or Big Endian
 * or RLE/JPEG-lossless stored objects sent as Explicit VR Little Endian). Fails with CDCMTK_ERR_UNSUPPORTED when
 * DCMTK has no codec for the conversion. The result is a whole Part-10 file with updated File Meta Information. */
int cdcmtk_transcode(const uint8_t *part10, size_t length, const char *transfer_syntax_uid, uint8_t **out,
                     size_t *out_length, char *error, size_t error_capacity);

/* Renders one frame (0-based) of an image held as a Part-10 file in memory to JPEG (format 0, `quality` 1-100) or
 * PNG (format 1). Only that frame is decoded. Objects beyond CDCMTK_MAXIMUM_DECODED_BYTES or
 * CDCMTK_MAXIMUM_FRAME_PIXELS are refused (CDCMTK_ERR_LIMIT) before decoding. `region` (x, y, width, height in
 * source pixels) selects a part of the frame when its width and height are non-zero; the result is scaled to fit
 * inside `out_width` x `out_height` preserving the aspect ratio, never larger than the source region (0 x 0 keeps
 * the size). Monochrome frames use their first VOI window, or the min-max window. */
int cdcmtk_render(const uint8_t *part10, size_t length, uint32_t frame, const uint32_t region[4], uint32_t out_width,
                  uint32_t out_height, int format, int quality, uint8_t **out, size_t *out_length, char *error,
                  size_t error_capacity);

#ifdef __cplusplus
}
#endif

#endif
