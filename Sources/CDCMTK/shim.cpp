// C++17 implementation of CDCMTK.h over DCMTK 3.6.7. Nothing here throws across the C boundary: every entry
// point catches and turns failures into a status code plus one line of text.

#include "CDCMTK.h"

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcfcache.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpeg/dipijpeg.h"
#include "dcmtk/dcmimgle/dcmimage.h"
#include "dcmtk/dcmimage/diregist.h"
#include "dcmtk/dcmimage/dipipng.h"
#include "dcmtk/dcmdata/dcostrmb.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/oflog/oflog.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <fcntl.h>
#include <mutex>
#include <new>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

void setError(char *error, size_t capacity, const std::string &message) {
    if (error == nullptr || capacity == 0) return;
    std::snprintf(error, capacity, "%s", message.c_str());
}

std::once_flag initOnce;
bool initOK = false;
std::string initMessage;

void doInitialize() {
    // DCMTK logs to stderr by default; Facet reports errors itself and never lets a library print.
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    if (!dcmDataDict.isDictionaryLoaded()) {
        initMessage = "DCMTK data dictionary is not loaded (install the dcmtk data files or set DCMDICTPATH)";
        return;
    }
    DJDecoderRegistration::registerCodecs(EDC_photometricInterpretation, EUC_never);
    DcmRLEDecoderRegistration::registerCodecs();
    initOK = true;
}

bool ensureInitialized(char *error, size_t capacity) {
    std::call_once(initOnce, doInitialize);
    if (!initOK) setError(error, capacity, initMessage);
    return initOK;
}

struct Writer {
    std::vector<uint8_t> bytes;
    void u8(uint8_t v) { bytes.push_back(v); }
    void u16(uint16_t v) {
        bytes.push_back(uint8_t(v & 0xff));
        bytes.push_back(uint8_t(v >> 8));
    }
    void u32(uint32_t v) {
        for (int i = 0; i < 4; ++i) bytes.push_back(uint8_t((v >> (8 * i)) & 0xff));
    }
};

bool isBinaryVR(DcmEVR vr) {
    switch (vr) {
    case EVR_OB: case EVR_OW: case EVR_OF: case EVR_OD: case EVR_OL: case EVR_OV: case EVR_UN:
        return true;
    default:
        return false;
    }
}

OFCondition walkItem(DcmItem *item, uint32_t threshold, bool encapsulatedPixels, Writer &out) {
    const unsigned long count = item->card();
    for (unsigned long i = 0; i < count; ++i) {
        DcmElement *element = item->getElement(i);
        if (element == nullptr) continue;
        const DcmTag &tag = element->getTag();
        if (element->ident() == EVR_SQ) {
            auto *sequence = OFstatic_cast(DcmSequenceOfItems *, element);
            out.u8(2);
            out.u16(tag.getGroup());
            out.u16(tag.getElement());
            for (unsigned long j = 0; j < sequence->card(); ++j) {
                DcmItem *child = sequence->getItem(j);
                if (child == nullptr) continue;
                out.u8(3);
                // Pixel Data inside items (icon images) is encapsulated too under an encapsulated syntax.
                OFCondition status = walkItem(child, threshold, encapsulatedPixels, out);
                if (status.bad()) return status;
                out.u8(4);
            }
            out.u8(5);
            continue;
        }
        DcmVR vr(element->getVR());
        DcmEVR valid = vr.getValidEVR();
        const char *name = DcmVR(valid).getVRName();
        const Uint32 length = element->getLength();
        bool pixelSequence = tag == DCM_PixelData && encapsulatedPixels;
        bool bulk = pixelSequence || (isBinaryVR(valid) && length > threshold) || length > (16u << 20);
        out.u8(1);
        out.u16(tag.getGroup());
        out.u16(tag.getElement());
        out.u8(uint8_t(name[0]));
        out.u8(uint8_t(name[1]));
        out.u8(bulk ? 1 : 0);
        out.u32(pixelSequence ? 0xFFFFFFFFu : length);
        if (bulk || length == 0) continue;
        size_t offset = out.bytes.size();
        out.bytes.resize(offset + length);
        OFCondition status = element->getPartialValue(out.bytes.data() + offset, 0, length, nullptr, EBO_LittleEndian);
        if (status.bad()) return status;
    }
    return EC_Normal;
}

int finishRead(DcmFileFormat &file, uint32_t threshold, uint8_t **out, size_t *outLength, char *error,
               size_t capacity) {
    DcmDataset *dataset = file.getDataset();
    // Text is handed to Swift as UTF-8. A dataset whose character set DCMTK cannot convert keeps its bytes.
    (void)dataset->convertToUTF8();
    Writer writer;
    OFCondition status = walkItem(file.getMetaInfo(), threshold, false, writer);
    if (status.good()) {
        bool encapsulated = DcmXfer(dataset->getOriginalXfer()).isEncapsulated();
        status = walkItem(dataset, threshold, encapsulated, writer);
    }
    if (status.bad()) {
        setError(error, capacity, std::string("DICOM value could not be read: ") + status.text());
        return CDCMTK_ERR_MALFORMED;
    }
    auto *buffer = static_cast<uint8_t *>(std::malloc(writer.bytes.empty() ? 1 : writer.bytes.size()));
    if (buffer == nullptr) return CDCMTK_ERR_MEMORY;
    if (!writer.bytes.empty()) std::memcpy(buffer, writer.bytes.data(), writer.bytes.size());
    *out = buffer;
    *outLength = writer.bytes.size();
    return CDCMTK_OK;
}

bool hasPreamble(const uint8_t *bytes, size_t length) {
    return length >= 132 && std::memcmp(bytes + 128, "DICM", 4) == 0;
}

int readFailure(const OFCondition &status, char *error, size_t capacity) {
    setError(error, capacity, std::string("malformed or truncated DICOM: ") + status.text());
    return CDCMTK_ERR_MALFORMED;
}

// DCMTK parses sequences recursively: a few megabytes of nested empty sequences overflow the stack. Before DCMTK
// sees a file, this iterative scan follows the element structure (File Meta Information, then the dataset in its
// transfer syntax) and refuses nesting deeper than CDCMTK_MAXIMUM_NESTING sequences (the limit DICOMCore's DICOM
// JSON decoder shares, so that whatever is read here can be indexed and read back). Values are skipped, not read.
const size_t kMaximumNesting = CDCMTK_MAXIMUM_NESTING;

struct ByteSource {
    virtual ~ByteSource() = default;
    virtual bool read(uint64_t offset, void *out, size_t count) = 0;
};

struct BufferSource : ByteSource {
    const uint8_t *bytes;
    size_t length;
    BufferSource(const uint8_t *b, size_t n) : bytes(b), length(n) {}
    bool read(uint64_t offset, void *out, size_t count) override {
        if (offset > length || length - offset < count) return false;
        std::memcpy(out, bytes + offset, count);
        return true;
    }
};

struct FileSource : ByteSource {
    int fd;
    explicit FileSource(int descriptor) : fd(descriptor) {}
    bool read(uint64_t offset, void *out, size_t count) override {
        return ::pread(fd, out, count, off_t(offset)) == ssize_t(count);
    }
};

// VRs whose explicit encoding has a reserved field and a 32-bit length (PS3.5 7.1.2).
bool isLongVR(const std::string &name) {
    static const char *longVRs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};
    for (const char *candidate : longVRs) {
        if (name == candidate) return true;
    }
    return false;
}

// Returns false (with the reason) when the nesting is too deep or the transfer syntax is refused. Structure the
// scan cannot follow is left for DCMTK to judge.
bool nestingIsBounded(ByteSource &source, std::string &reason) {
    auto u16 = [&](uint64_t at, bool big, uint16_t &value) {
        uint8_t b[2];
        if (!source.read(at, b, 2)) return false;
        value = big ? uint16_t(b[0] << 8 | b[1]) : uint16_t(b[1] << 8 | b[0]);
        return true;
    };
    auto u32 = [&](uint64_t at, bool big, uint32_t &value) {
        uint8_t b[4];
        if (!source.read(at, b, 4)) return false;
        value = big ? (uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3])
                    : (uint32_t(b[3]) << 24 | uint32_t(b[2]) << 16 | uint32_t(b[1]) << 8 | b[0]);
        return true;
    };
    // File Meta Information: Explicit VR Little Endian, group 0002, read for the transfer syntax.
    uint64_t pos = 132;
    std::string syntax;
    while (true) {
        uint16_t group = 0, element = 0;
        if (!u16(pos, false, group) || group != 0x0002 || !u16(pos + 2, false, element)) break;
        char vr[2];
        if (!source.read(pos + 4, vr, 2)) return true;
        uint32_t length = 0;
        uint64_t header = 8;
        bool longForm = isLongVR(std::string(vr, 2));
        if (longForm) {
            if (!u32(pos + 8, false, length)) return true;
            header = 12;
        } else {
            uint16_t short16 = 0;
            if (!u16(pos + 6, false, short16)) return true;
            length = short16;
        }
        if (element == 0x0010 && length < 128) {
            std::vector<char> text(length);
            if (!source.read(pos + header, text.data(), length)) return true;
            syntax.assign(text.begin(), text.end());
            while (!syntax.empty() && (syntax.back() == '\0' || syntax.back() == ' ')) syntax.pop_back();
        }
        if (length == 0xFFFFFFFFu) return true;
        pos += header + length;
    }
    if (syntax == "1.2.840.10008.1.2.1.99") {
        reason = "deflated transfer syntax is not accepted";
        return false;
    }
    bool implicitVR = syntax == "1.2.840.10008.1.2";
    bool big = syntax == "1.2.840.10008.1.2.2";
    if (syntax.empty()) {
        // No usable meta information: DCMTK will guess from the first element; so does the scan.
        char vr[2];
        if (!source.read(pos + 4, vr, 2)) return true;
        implicitVR = !(vr[0] >= 'A' && vr[0] <= 'Z' && vr[1] >= 'A' && vr[1] <= 'Z');
    }
    // Open containers: where each ends (UINT64_MAX: undefined length, ends at its delimiter) and whether its
    // content is implicit VR (UN of undefined length holds implicit VR Little Endian).
    // `fragments`: the items of encapsulated pixel data, whose content is compressed bytes, not a dataset.
    struct Open { uint64_t end; bool implicitVR; bool bigEndian; bool isItem; bool fragments; };
    std::vector<Open> open;
    size_t sequences = 0;
    const uint64_t undefined = UINT64_MAX;
    for (size_t steps = 0; steps < (size_t(1) << 32); ++steps) {
        while (!open.empty() && open.back().end != undefined && pos >= open.back().end) {
            if (!open.back().isItem) --sequences;
            open.pop_back();
        }
        bool currentImplicit = open.empty() ? implicitVR : open.back().implicitVR;
        bool currentBig = open.empty() ? big : open.back().bigEndian;
        uint16_t group = 0, element = 0;
        if (!u16(pos, currentBig, group) || !u16(pos + 2, currentBig, element)) return true;
        if (group == 0xFFFE) {
            uint32_t length = 0;
            if (!u32(pos + 4, currentBig, length)) return true;
            pos += 8;
            if (element == 0xE000 && !open.empty() && open.back().fragments) {
                if (length == 0xFFFFFFFFu) return true;
                pos += length;
            } else if (element == 0xE000) {
                open.push_back({length == 0xFFFFFFFFu ? undefined : pos + length, currentImplicit, currentBig, true,
                                false});
            } else if (element == 0xE00D || element == 0xE0DD) {
                if (!open.empty() && open.back().end == undefined) {
                    if (!open.back().isItem) --sequences;
                    open.pop_back();
                }
            }
            continue;
        }
        uint32_t length = 0;
        uint64_t header = 8;
        bool sequence = false;
        bool unknown = false;
        bool binary = false;
        if (currentImplicit) {
            if (!u32(pos + 4, currentBig, length)) return true;
            sequence = DcmTag(group, element).getEVR() == EVR_SQ;
            binary = group == 0x7FE0 && element == 0x0010;
        } else {
            char vr[2];
            if (!source.read(pos + 4, vr, 2)) return true;
            std::string name(vr, 2);
            if (isLongVR(name)) {
                if (!u32(pos + 8, currentBig, length)) return true;
                header = 12;
            } else {
                uint16_t short16 = 0;
                if (!u16(pos + 6, currentBig, short16)) return true;
                length = short16;
            }
            sequence = name == "SQ";
            unknown = name == "UN";
            binary = name == "OB" || name == "OW";
        }
        pos += header;
        if (sequence || length == 0xFFFFFFFFu) {
            // A sequence, or a value of undefined length (encapsulated pixel data, UN holding a sequence).
            // UN of undefined length holds Implicit VR Little Endian (PS3.5 6.2.2).
            open.push_back({length == 0xFFFFFFFFu ? undefined : pos + length, currentImplicit || unknown,
                            unknown ? false : currentBig, false, binary && !sequence});
            if (++sequences > kMaximumNesting) {
                reason = "sequences nested more than " + std::to_string(kMaximumNesting) + " deep";
                return false;
            }
            continue;
        }
        pos += length;
    }
    return true;
}

int checkNesting(ByteSource &source, char *error, size_t capacity) {
    std::string reason;
    if (nestingIsBounded(source, reason)) return CDCMTK_OK;
    setError(error, capacity, "DICOM refused: " + reason);
    return CDCMTK_ERR_LIMIT;
}

// checkNesting on a file, by path.
int checkFileNesting(const char *path, char *error, size_t capacity) {
    int descriptor = ::open(path, O_RDONLY);
    if (descriptor < 0) {
        setError(error, capacity, std::string("cannot open file: ") + std::strerror(errno));
        return CDCMTK_ERR_IO;
    }
    FileSource source(descriptor);
    int nesting = checkNesting(source, error, capacity);
    ::close(descriptor);
    return nesting;
}

// Loads a whole Part-10 file held in memory (every value; the bytes are here already).
int loadBuffer(const uint8_t *buffer, size_t length, DcmFileFormat &file, char *error, size_t capacity) {
    if (!hasPreamble(buffer, length)) {
        setError(error, capacity, "not a DICOM Part-10 file: no 'DICM' prefix after the 128-byte preamble");
        return CDCMTK_ERR_NOT_DICOM;
    }
    BufferSource source(buffer, length);
    int nesting = checkNesting(source, error, capacity);
    if (nesting != CDCMTK_OK) return nesting;
    DcmInputBufferStream stream;
    stream.setBuffer(buffer, OFstatic_cast(offile_off_t, length));
    stream.setEos();
    file.transferInit();
    OFCondition status = file.read(stream, EXS_Unknown, EGL_noChange, 0xFFFFFFFFu);
    file.transferEnd();
    if (status.bad()) return readFailure(status, error, capacity);
    return CDCMTK_OK;
}


int fsyncPath(const std::string &path, bool directory) {
    int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    if (fd < 0) return -1;
    int result = ::fsync(fd);
    ::close(fd);
    return result;
}

std::string parentDirectory(const std::string &path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

// Runs one entry point's body: initialises DCMTK first and turns any C++ exception into a status code.
template <typename Body>
int guarded(char *error, size_t capacity, const char *what, int failure, Body body) {
    try {
        if (!ensureInitialized(error, capacity)) return CDCMTK_ERR_INIT;
        return body();
    } catch (const std::bad_alloc &) {
        setError(error, capacity, std::string("out of memory while ") + what);
        return CDCMTK_ERR_MEMORY;
    } catch (...) {
        setError(error, capacity, std::string("unexpected failure while ") + what);
        return failure;
    }
}

// Parses a dataset given as Explicit VR Little Endian bytes (for an encapsulated syntax the dataset encoding is the
// same and the Pixel Data is an item sequence) into `file`, to be written under `xfer`.
int parseDataset(const uint8_t *dataset, size_t length, const DcmXfer &xfer, DcmFileFormat &file, char *error,
                 size_t capacity) {
    if (xfer.getXfer() == EXS_Unknown) {
        setError(error, capacity, "unknown transfer syntax");
        return CDCMTK_ERR_UNSUPPORTED;
    }
    DcmDataset *target = file.getDataset();
    DcmInputBufferStream stream;
    stream.setBuffer(dataset, OFstatic_cast(offile_off_t, length));
    stream.setEos();
    target->transferInit();
    OFCondition status = target->read(stream, xfer.getXfer(), EGL_noChange, DCM_MaxReadLength);
    target->transferEnd();
    if (status.bad()) {
        setError(error, capacity, std::string("dataset rejected by DCMTK: ") + status.text());
        return CDCMTK_ERR_MALFORMED;
    }
    return CDCMTK_OK;
}

}  // namespace

extern "C" int cdcmtk_initialize(char *error, size_t error_capacity) {
    try {
        return ensureInitialized(error, error_capacity) ? CDCMTK_OK : CDCMTK_ERR_INIT;
    } catch (...) {
        setError(error, error_capacity, "DCMTK initialisation failed");
        return CDCMTK_ERR_INIT;
    }
}

extern "C" void cdcmtk_free(void *buffer) { std::free(buffer); }

extern "C" int cdcmtk_read_file(const char *path, uint32_t bulk_threshold, uint8_t **out, size_t *out_length,
                                char *error, size_t error_capacity) {
    return guarded(error, error_capacity, "reading DICOM", CDCMTK_ERR_MALFORMED, [&]() -> int {
        FILE *handle = std::fopen(path, "rb");
        if (handle == nullptr) {
            setError(error, error_capacity, std::string("cannot open file: ") + std::strerror(errno));
            return CDCMTK_ERR_IO;
        }
        uint8_t head[132];
        size_t got = std::fread(head, 1, sizeof head, handle);
        std::fclose(handle);
        if (!hasPreamble(head, got)) {
            setError(error, error_capacity, "not a DICOM Part-10 file: no 'DICM' prefix after the 128-byte preamble");
            return CDCMTK_ERR_NOT_DICOM;
        }
        int nesting = checkFileNesting(path, error, error_capacity);
        if (nesting != CDCMTK_OK) return nesting;
        DcmFileFormat file;
        OFCondition status = file.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, bulk_threshold, ERM_fileOnly);
        if (status.bad()) return readFailure(status, error, error_capacity);
        return finishRead(file, bulk_threshold, out, out_length, error, error_capacity);
    });
}

extern "C" int cdcmtk_read_buffer(const uint8_t *buffer, size_t length, uint32_t bulk_threshold, uint8_t **out,
                                  size_t *out_length, char *error, size_t error_capacity) {
    return guarded(error, error_capacity, "reading DICOM", CDCMTK_ERR_MALFORMED, [&]() -> int {
        // The input is in memory already: load every value (a value left unloaded could not be fetched later).
        DcmFileFormat file;
        int loaded = loadBuffer(buffer, length, file, error, error_capacity);
        if (loaded != CDCMTK_OK) return loaded;
        return finishRead(file, bulk_threshold, out, out_length, error, error_capacity);
    });
}

extern "C" int cdcmtk_read_element_value(const char *path, uint16_t group, uint16_t element, uint8_t **out,
                                         size_t *out_length, char *error, size_t error_capacity) {
    return guarded(error, error_capacity, "reading a DICOM element", CDCMTK_ERR_MALFORMED, [&]() -> int {
        int nesting = checkFileNesting(path, error, error_capacity);
        if (nesting != CDCMTK_OK) return nesting;
        DcmFileFormat file;
        OFCondition status = file.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, 4096, ERM_fileOnly);
        if (status.bad()) return readFailure(status, error, error_capacity);
        DcmElement *found = nullptr;
        status = file.getDataset()->findAndGetElement(DcmTagKey(group, element), found, OFFalse);
        if (status.bad() || found == nullptr || found->ident() == EVR_SQ) {
            setError(error, error_capacity, "element not present in the dataset");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        const Uint32 length = found->getLength();
        auto *buffer = static_cast<uint8_t *>(std::malloc(length == 0 ? 1 : length));
        if (buffer == nullptr) return CDCMTK_ERR_MEMORY;
        if (length > 0) {
            DcmFileCache cache;
            status = found->getPartialValue(buffer, 0, length, &cache, EBO_LittleEndian);
            if (status.bad()) {
                std::free(buffer);
                return readFailure(status, error, error_capacity);
            }
        }
        *out = buffer;
        *out_length = length;
        return CDCMTK_OK;
    });
}

extern "C" int cdcmtk_write_part10(const uint8_t *dataset, size_t dataset_length, const char *transfer_syntax_uid,
                                   const char *path, char *error, size_t error_capacity) {
    std::string temporary;
    try {
        if (!ensureInitialized(error, error_capacity)) return CDCMTK_ERR_INIT;
        DcmXfer xfer(transfer_syntax_uid);
        DcmFileFormat file;
        int parsed = parseDataset(dataset, dataset_length, xfer, file, error, error_capacity);
        if (parsed != CDCMTK_OK) return parsed;
        OFCondition status;
        temporary = std::string(path) + ".tmp" + std::to_string(::getpid());
        status = file.saveFile(OFFilename(temporary.c_str()), xfer.getXfer(), EET_ExplicitLength, EGL_recalcGL,
                               EPD_noChange, 0, 0, EWM_createNewMeta);
        if (status.bad()) {
            ::unlink(temporary.c_str());
            setError(error, error_capacity, std::string("cannot write DICOM file: ") + status.text());
            return CDCMTK_ERR_IO;
        }
        if (fsyncPath(temporary, false) != 0 || ::rename(temporary.c_str(), path) != 0) {
            int saved = errno;
            ::unlink(temporary.c_str());
            setError(error, error_capacity, std::string("cannot place DICOM file: ") + std::strerror(saved));
            return CDCMTK_ERR_IO;
        }
        (void)fsyncPath(parentDirectory(path), true);
        return CDCMTK_OK;
    } catch (...) {
        if (!temporary.empty()) ::unlink(temporary.c_str());
        setError(error, error_capacity, "unexpected failure while writing DICOM");
        return CDCMTK_ERR_IO;
    }
}

extern "C" int cdcmtk_decode_jpeg(const uint8_t *jpeg, size_t length, const char *transfer_syntax_uid,
                                  uint16_t rows, uint16_t columns, uint16_t samples_per_pixel,
                                  const char *photometric, uint8_t **out_pixels, size_t *out_length, char *error,
                                  size_t error_capacity) {
    return guarded(error, error_capacity, "decoding JPEG", CDCMTK_ERR_MALFORMED, [&]() -> int {
        DcmXfer xfer(transfer_syntax_uid);
        if (!xfer.isEncapsulated()) {
            setError(error, error_capacity, "not an encapsulated transfer syntax");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        if (length > 0xFFFFFFF0u) {
            setError(error, error_capacity, "JPEG stream too large");
            return CDCMTK_ERR_LIMIT;
        }
        DcmDataset dataset;
        dataset.putAndInsertUint16(DCM_Rows, rows);
        dataset.putAndInsertUint16(DCM_Columns, columns);
        dataset.putAndInsertUint16(DCM_SamplesPerPixel, samples_per_pixel);
        dataset.putAndInsertString(DCM_PhotometricInterpretation, photometric);
        dataset.putAndInsertUint16(DCM_BitsAllocated, 8);
        dataset.putAndInsertUint16(DCM_BitsStored, 8);
        dataset.putAndInsertUint16(DCM_HighBit, 7);
        dataset.putAndInsertUint16(DCM_PixelRepresentation, 0);
        if (samples_per_pixel > 1) dataset.putAndInsertUint16(DCM_PlanarConfiguration, 0);

        Uint32 even = OFstatic_cast(Uint32, length + (length & 1));
        std::vector<Uint8> fragmentBytes(even, 0);
        std::memcpy(fragmentBytes.data(), jpeg, length);
        auto *sequence = new DcmPixelSequence(DcmTag(DCM_PixelData, EVR_OB));
        auto *offsets = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
        sequence->insert(offsets);
        auto *fragment = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
        fragment->putUint8Array(fragmentBytes.data(), even);
        sequence->insert(fragment);
        auto *pixels = new DcmPixelData(DCM_PixelData);
        pixels->putOriginalRepresentation(xfer.getXfer(), nullptr, sequence);
        dataset.insert(pixels);

        OFCondition status = dataset.chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
        if (status.bad() || !dataset.canWriteXfer(EXS_LittleEndianExplicit)) {
            setError(error, error_capacity, std::string("DCMTK could not decode the JPEG: ") + status.text());
            return CDCMTK_ERR_UNSUPPORTED;
        }
        const Uint8 *decoded = nullptr;
        unsigned long count = 0;
        status = dataset.findAndGetUint8Array(DCM_PixelData, decoded, &count);
        size_t expected = size_t(rows) * columns * samples_per_pixel;
        if (status.bad() || decoded == nullptr || count < expected) {
            setError(error, error_capacity, "DCMTK decoded fewer pixels than the frame holds");
            return CDCMTK_ERR_MALFORMED;
        }
        auto *buffer = static_cast<uint8_t *>(std::malloc(expected == 0 ? 1 : expected));
        if (buffer == nullptr) return CDCMTK_ERR_MEMORY;
        std::memcpy(buffer, decoded, expected);
        *out_pixels = buffer;
        *out_length = expected;
        return CDCMTK_OK;
    });
}

namespace {

int handOver(const std::vector<uint8_t> &bytes, uint8_t **out, size_t *outLength) {
    auto *buffer = static_cast<uint8_t *>(std::malloc(bytes.empty() ? 1 : bytes.size()));
    if (buffer == nullptr) return CDCMTK_ERR_MEMORY;
    if (!bytes.empty()) std::memcpy(buffer, bytes.data(), bytes.size());
    *out = buffer;
    *outLength = bytes.size();
    return CDCMTK_OK;
}

// Writes a whole Part-10 file (explicit lengths, group lengths recalculated) into a buffer handed to the caller.
int writeToMemory(DcmFileFormat &file, E_TransferSyntax xfer, E_FileWriteMode mode, uint8_t **out, size_t *outLength,
                  char *error, size_t capacity) {
    Uint32 size = file.calcElementLength(xfer, EET_ExplicitLength) + 4096;
    std::vector<uint8_t> bytes(size);
    DcmOutputBufferStream stream(bytes.data(), size);
    file.transferInit();
    OFCondition status = file.write(stream, xfer, EET_ExplicitLength, nullptr, EGL_recalcGL, EPD_noChange, 0, 0, 0, mode);
    file.transferEnd();
    if (status.bad()) {
        setError(error, capacity, std::string("cannot encode DICOM: ") + status.text());
        return CDCMTK_ERR_MALFORMED;
    }
    void *written = nullptr;
    offile_off_t count = 0;
    stream.flushBuffer(written, count);
    bytes.resize(size_t(count));
    return handOver(bytes, out, outLength);
}

}  // namespace

namespace {

// The declared Number of Frames: 1 when absent, empty or not a positive integer that fits 32 bits.
uint32_t declaredFrames(DcmDataset *dataset) {
    Sint32 frames = 1;
    if (dataset->findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1) return 1;
    return uint32_t(frames);
}

// Refuses, before anything is decoded, an object whose decoded pixel data exceeds the bounds: per frame (rows x
// columns at most 200 MP, rows x columns x samples x bits allocated at most 1 GiB), and with `wholeObject` the
// same times the frame count (what decompressing the whole object allocates). Every product is checked for
// overflow: the values come from the file.
int decodedSizeIsBounded(DcmDataset *dataset, bool wholeObject, const char *what, char *error, size_t capacity) {
    Uint16 rows = 0, columns = 0, samples = 1, bits = 8;
    dataset->findAndGetUint16(DCM_Rows, rows);
    dataset->findAndGetUint16(DCM_Columns, columns);
    dataset->findAndGetUint16(DCM_SamplesPerPixel, samples);
    dataset->findAndGetUint16(DCM_BitsAllocated, bits);
    uint64_t pixels = uint64_t(rows) * columns;
    if (pixels > CDCMTK_MAXIMUM_FRAME_PIXELS) {
        setError(error, capacity, std::string(what) + ": more than 200 megapixels per frame");
        return CDCMTK_ERR_LIMIT;
    }
    uint64_t bitsPerFrame = 0, totalBits = 0;
    uint64_t frames = wholeObject ? declaredFrames(dataset) : 1;
    if (__builtin_mul_overflow(pixels, uint64_t(samples) * bits, &bitsPerFrame) ||
        __builtin_mul_overflow(bitsPerFrame, frames, &totalBits) || totalBits / 8 > CDCMTK_MAXIMUM_DECODED_BYTES) {
        setError(error, capacity, std::string(what) + ": more than 1 GiB of decoded pixel data");
        return CDCMTK_ERR_LIMIT;
    }
    return CDCMTK_OK;
}

// Rendering decodes one frame (partial access): that frame must be bounded and must exist.
int renderIsBounded(DcmDataset *dataset, uint32_t frame, char *error, size_t capacity) {
    int bounded = decodedSizeIsBounded(dataset, false, "image too large to render", error, capacity);
    if (bounded != CDCMTK_OK) return bounded;
    uint32_t frames = declaredFrames(dataset);
    if (frame >= frames) {
        setError(error, capacity,
                 "no such frame: frame " + std::to_string(uint64_t(frame) + 1) + " of an object with " +
                     std::to_string(frames) + " frame(s)");
        return CDCMTK_ERR_NO_SUCH_FRAME;
    }
    return CDCMTK_OK;
}

}  // namespace

extern "C" int cdcmtk_transcode(const uint8_t *part10, size_t length, const char *transfer_syntax_uid, uint8_t **out,
                                size_t *out_length, char *error, size_t error_capacity) {
    return guarded(error, error_capacity, "transcoding DICOM", CDCMTK_ERR_MALFORMED, [&]() -> int {
        DcmXfer target(transfer_syntax_uid);
        if (target.getXfer() == EXS_Unknown) {
            setError(error, error_capacity, "unknown transfer syntax");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        DcmFileFormat file;
        int loaded = loadBuffer(part10, length, file, error, error_capacity);
        if (loaded != CDCMTK_OK) return loaded;
        DcmDataset *dataset = file.getDataset();
        // Decompressing allocates the whole decoded pixel data at once: bounded before it starts. (A native
        // object's decoded size is its stored size.)
        if (DcmXfer(dataset->getOriginalXfer()).isEncapsulated() && dataset->tagExists(DCM_PixelData)) {
            int bounded = decodedSizeIsBounded(dataset, true, "too large to decompress", error, error_capacity);
            if (bounded != CDCMTK_OK) return bounded;
        }
        OFCondition status = dataset->chooseRepresentation(target.getXfer(), nullptr);
        if (status.bad() || !dataset->canWriteXfer(target.getXfer())) {
            setError(error, error_capacity, std::string("DCMTK cannot convert to ") + target.getXferName());
            return CDCMTK_ERR_UNSUPPORTED;
        }
        // Meta information for the new syntax, then the whole file into memory.
        file.getMetaInfo()->putAndInsertString(DCM_TransferSyntaxUID, target.getXferID());
        return writeToMemory(file, target.getXfer(), EWM_updateMeta, out, out_length, error, error_capacity);
    });
}


extern "C" int cdcmtk_render(const uint8_t *part10, size_t length, uint32_t frame, const uint32_t region[4],
                             uint32_t out_width, uint32_t out_height, int format, int quality, uint8_t **out,
                             size_t *out_length, char *error, size_t error_capacity) {
    return guarded(error, error_capacity, "rendering an image", CDCMTK_ERR_MALFORMED, [&]() -> int {
        DcmFileFormat file;
        int loaded = loadBuffer(part10, length, file, error, error_capacity);
        if (loaded != CDCMTK_OK) return loaded;
        DcmDataset *dataset = file.getDataset();
        if (!dataset->tagExists(DCM_PixelData)) {
            setError(error, error_capacity, "the instance has no pixel data to render");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        int bounded = renderIsBounded(dataset, frame, error, error_capacity);
        if (bounded != CDCMTK_OK) return bounded;
        // Partial access: only the requested frame is read and decoded, not the whole multi-frame object.
        DicomImage image(&file, dataset->getOriginalXfer(), CIF_UsePartialAccessToPixelData, frame, 1);
        if (image.getStatus() != EIS_Normal) {
            setError(error, error_capacity, std::string("cannot render: ") + DicomImage::getString(image.getStatus()));
            return CDCMTK_ERR_UNSUPPORTED;
        }
        if (image.isMonochrome()) {
            if (image.getWindowCount() > 0) image.setWindow(0); else image.setMinMaxWindow();
        }
        std::unique_ptr<DicomImage> clipped;
        DicomImage *source = &image;
        if (region != nullptr && region[2] > 0 && region[3] > 0) {
            if (uint64_t(region[0]) + region[2] > image.getWidth() ||
                uint64_t(region[1]) + region[3] > image.getHeight()) {
                setError(error, error_capacity, "viewport region lies outside the image");
                return CDCMTK_ERR_LIMIT;
            }
            clipped.reset(image.createClippedImage(long(region[0]), long(region[1]), region[2], region[3]));
            if (!clipped) {
                setError(error, error_capacity, "cannot clip the image");
                return CDCMTK_ERR_UNSUPPORTED;
            }
            source = clipped.get();
        }
        std::unique_ptr<DicomImage> scaled;
        if (out_width > 0 && out_height > 0) {
            double fx = double(out_width) / double(source->getWidth());
            double fy = double(out_height) / double(source->getHeight());
            double factor = fx < fy ? fx : fy;
            // Never larger than the source region: upscaling adds no information, only work and bytes.
            if (factor > 1.0) factor = 1.0;
            unsigned long width = (unsigned long)(double(source->getWidth()) * factor + 0.5);
            unsigned long height = (unsigned long)(double(source->getHeight()) * factor + 0.5);
            if (width < 1) width = 1;
            if (height < 1) height = 1;
            if (width != source->getWidth() || height != source->getHeight()) {
                scaled.reset(source->createScaledImage(width, height, 1, 0));
                if (!scaled) {
                    setError(error, error_capacity, "cannot scale the image");
                    return CDCMTK_ERR_UNSUPPORTED;
                }
                source = scaled.get();
            }
        }
        char *memory = nullptr;
        size_t size = 0;
        FILE *stream = open_memstream(&memory, &size);
        if (stream == nullptr) return CDCMTK_ERR_MEMORY;
        int ok = 0;
        if (format == 1) {
            DiPNGPlugin plugin;
            plugin.setMetainfoType(E_pngNoMetainfo);
            ok = source->writePluginFormat(&plugin, stream, 0);
        } else {
            DiJPEGPlugin plugin;
            plugin.setQuality(quality < 1 ? 1 : (quality > 100 ? 100 : quality));
            plugin.setSampling(ESS_411);
            ok = source->writePluginFormat(&plugin, stream, 0);
        }
        std::fclose(stream);
        if (!ok || memory == nullptr || size == 0) {
            std::free(memory);
            setError(error, error_capacity, "the image could not be encoded");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        *out = reinterpret_cast<uint8_t *>(memory);
        *out_length = size;
        return CDCMTK_OK;
    });
}

extern "C" int cdcmtk_encode_part10(const uint8_t *dataset, size_t dataset_length, const char *transfer_syntax_uid,
                                    uint8_t **out, size_t *out_length, char *error, size_t error_capacity) {
    return guarded(error, error_capacity, "encoding DICOM", CDCMTK_ERR_MALFORMED, [&]() -> int {
        DcmXfer xfer(transfer_syntax_uid);
        DcmFileFormat file;
        int parsed = parseDataset(dataset, dataset_length, xfer, file, error, error_capacity);
        if (parsed != CDCMTK_OK) return parsed;
        return writeToMemory(file, xfer.getXfer(), EWM_createNewMeta, out, out_length, error, error_capacity);
    });
}

extern "C" int cdcmtk_element_value(const uint8_t *part10, size_t length, uint16_t group, uint16_t element,
                                    uint8_t **out, size_t *out_length, char *error, size_t error_capacity) {
    return guarded(error, error_capacity, "reading a DICOM element", CDCMTK_ERR_MALFORMED, [&]() -> int {
        DcmFileFormat file;
        int loaded = loadBuffer(part10, length, file, error, error_capacity);
        if (loaded != CDCMTK_OK) return loaded;
        DcmDataset *dataset = file.getDataset();
        DcmElement *found = nullptr;
        OFCondition status = dataset->findAndGetElement(DcmTagKey(group, element), found, OFFalse);
        if (status.bad() || found == nullptr || found->ident() == EVR_SQ) {
            setError(error, error_capacity, "element not present in the dataset");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        if (DcmTagKey(group, element) == DCM_PixelData && DcmXfer(dataset->getOriginalXfer()).isEncapsulated()) {
            setError(error, error_capacity, "encapsulated pixel data is read by frame");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        const Uint32 size = found->getLength();
        std::vector<uint8_t> bytes(size);
        if (size > 0) {
            DcmFileCache cache;
            status = found->getPartialValue(bytes.data(), 0, size, &cache, EBO_LittleEndian);
            if (status.bad()) return readFailure(status, error, error_capacity);
        }
        return handOver(bytes, out, out_length);
    });
}

namespace {

// Where the frames of a loaded object are, and how many of them really exist.
struct FrameLayout {
    DcmPixelData *pixels = nullptr;
    DcmPixelSequence *sequence = nullptr;  // encapsulated pixel data; nullptr for native
    uint32_t count = 0;                    // frames that can actually be read
    uint32_t declared = 0;                 // Number of Frames (1 when absent)
    uint64_t frameBytes = 0;               // native: bytes per frame
    uint32_t pixelLength = 0;              // native: length of the Pixel Data value
};

// Fills `layout` for a loaded object. `hasPixels` false (and CDCMTK_OK) when there is no Pixel Data.
int locateFrames(DcmFileFormat &file, FrameLayout &layout, bool &hasPixels, char *error, size_t capacity) {
    DcmDataset *dataset = file.getDataset();
    DcmElement *element = nullptr;
    hasPixels = dataset->findAndGetElement(DCM_PixelData, element, OFFalse).good() && element != nullptr;
    if (!hasPixels) return CDCMTK_OK;
    layout.pixels = OFstatic_cast(DcmPixelData *, element);
    layout.declared = declaredFrames(dataset);
    E_TransferSyntax xfer = dataset->getOriginalXfer();
    if (DcmXfer(xfer).isEncapsulated()) {
        if (layout.pixels->getEncapsulatedRepresentation(xfer, nullptr, layout.sequence).bad() ||
            layout.sequence == nullptr) {
            setError(error, capacity, "encapsulated pixel data cannot be read");
            return CDCMTK_ERR_MALFORMED;
        }
        unsigned long fragments = layout.sequence->card();  // item 0 is the Basic Offset Table
        if (fragments <= 1) {
            layout.count = 0;
        } else if (layout.declared == 1) {
            layout.count = 1;
        } else if (fragments - 1 == layout.declared) {
            layout.count = layout.declared;
        } else {
            setError(error, capacity, "frames span several fragments; not supported");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        return CDCMTK_OK;
    }
    Uint16 rows = 0, columns = 0, samples = 1, bits = 8;
    dataset->findAndGetUint16(DCM_Rows, rows);
    dataset->findAndGetUint16(DCM_Columns, columns);
    dataset->findAndGetUint16(DCM_SamplesPerPixel, samples);
    dataset->findAndGetUint16(DCM_BitsAllocated, bits);
    uint64_t bitsPerFrame = 0;
    if (__builtin_mul_overflow(uint64_t(rows) * columns, uint64_t(samples) * bits, &bitsPerFrame)) {
        setError(error, capacity, "pixel data description is too large");
        return CDCMTK_ERR_LIMIT;
    }
    layout.frameBytes = bitsPerFrame / 8;
    layout.pixelLength = layout.pixels->getLength();
    if (layout.frameBytes == 0) {
        setError(error, capacity, "pixel data description is incomplete");
        return CDCMTK_ERR_MALFORMED;
    }
    uint64_t present = layout.pixelLength / layout.frameBytes;
    layout.count = present < layout.declared ? uint32_t(present) : layout.declared;
    return CDCMTK_OK;
}

int noSuchFrame(uint32_t frame, const FrameLayout &layout, char *error, size_t capacity) {
    setError(error, capacity,
             "no such frame: frame " + std::to_string(uint64_t(frame) + 1) + " of an object with " +
                 std::to_string(layout.count) + " frame(s)");
    return CDCMTK_ERR_NO_SUCH_FRAME;
}

// Appends frame `frame` (0-based, < layout.count) to `bytes`.
int appendFrame(const FrameLayout &layout, uint32_t frame, std::vector<uint8_t> &bytes, char *error,
                size_t capacity) {
    if (layout.sequence != nullptr) {
        unsigned long first = 1, last = layout.sequence->card();  // [first, last)
        if (layout.declared > 1) {
            first = (unsigned long)frame + 1;
            last = first + 1;
        }
        for (unsigned long i = first; i < last; ++i) {
            DcmPixelItem *item = nullptr;
            if (layout.sequence->getItem(item, i).bad() || item == nullptr) continue;
            Uint8 *data = nullptr;
            if (item->getUint8Array(data).bad() || data == nullptr) continue;
            bytes.insert(bytes.end(), data, data + item->getLength());
        }
        return CDCMTK_OK;
    }
    // frame < count <= pixelLength / frameBytes, so offset + frameBytes <= pixelLength (a 32-bit length): the
    // products below cannot overflow.
    uint64_t offset = uint64_t(frame) * layout.frameBytes;
    if (frame >= layout.count || offset + layout.frameBytes > layout.pixelLength) {
        return noSuchFrame(frame, layout, error, capacity);
    }
    size_t start = bytes.size();
    bytes.resize(start + size_t(layout.frameBytes));
    DcmFileCache cache;
    OFCondition status = layout.pixels->getPartialValue(bytes.data() + start, Uint32(offset),
                                                        Uint32(layout.frameBytes), &cache, EBO_LittleEndian);
    if (status.bad()) return readFailure(status, error, capacity);
    return CDCMTK_OK;
}

}  // namespace

extern "C" int cdcmtk_frame(const uint8_t *part10, size_t length, uint32_t frame, uint8_t **out, size_t *out_length,
                            char *error, size_t error_capacity) {
    size_t frameLength = 0;
    return cdcmtk_frames(part10, length, &frame, 1, out, out_length, &frameLength, error, error_capacity);
}

namespace {

// Parses a Part-10 buffer and finds where its frames are (one parse for any number of frames).
int loadFrames(const uint8_t *part10, size_t length, DcmFileFormat &file, FrameLayout &layout, bool &hasPixels,
               char *error, size_t capacity) {
    int loaded = loadBuffer(part10, length, file, error, capacity);
    if (loaded != CDCMTK_OK) return loaded;
    return locateFrames(file, layout, hasPixels, error, capacity);
}

}  // namespace

extern "C" int cdcmtk_frames(const uint8_t *part10, size_t length, const uint32_t *frames, size_t frame_count,
                             uint8_t **out, size_t *out_length, size_t *frame_lengths, char *error,
                             size_t error_capacity) {
    return guarded(error, error_capacity, "reading frames", CDCMTK_ERR_MALFORMED, [&]() -> int {
        if (frame_count > 0 && (frames == nullptr || frame_lengths == nullptr)) {
            setError(error, error_capacity, "no frame list given");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        DcmFileFormat file;
        FrameLayout layout;
        bool hasPixels = false;
        int located = loadFrames(part10, length, file, layout, hasPixels, error, error_capacity);
        if (located != CDCMTK_OK) return located;
        if (!hasPixels) {
            setError(error, error_capacity, "the instance has no pixel data");
            return CDCMTK_ERR_UNSUPPORTED;
        }
        // Every number is checked before any frame is copied.
        for (size_t i = 0; i < frame_count; ++i) {
            if (frames[i] >= layout.count) return noSuchFrame(frames[i], layout, error, error_capacity);
        }
        std::vector<uint8_t> bytes;
        for (size_t i = 0; i < frame_count; ++i) {
            size_t before = bytes.size();
            int appended = appendFrame(layout, frames[i], bytes, error, error_capacity);
            if (appended != CDCMTK_OK) return appended;
            frame_lengths[i] = bytes.size() - before;
        }
        return handOver(bytes, out, out_length);
    });
}

extern "C" int cdcmtk_number_of_frames(const uint8_t *part10, size_t length, uint32_t *out_frames, char *error,
                                       size_t error_capacity) {
    return guarded(error, error_capacity, "counting frames", CDCMTK_ERR_MALFORMED, [&]() -> int {
        if (out_frames == nullptr) return CDCMTK_ERR_UNSUPPORTED;
        DcmFileFormat file;
        FrameLayout layout;
        bool hasPixels = false;
        int located = loadFrames(part10, length, file, layout, hasPixels, error, error_capacity);
        if (located != CDCMTK_OK) return located;
        *out_frames = hasPixels ? layout.count : 0;
        return CDCMTK_OK;
    });
}
