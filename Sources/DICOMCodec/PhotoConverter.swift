import DICOMCore
import Foundation

/// A DICOM object ready to be written: its dataset and the transfer syntax it is encoded in.
public struct PreparedInstance: Sendable {
    public var dataset: Dataset
    public var transferSyntaxUID: String
    /// What the conversion did that a reader of the object should know (transcoding, alpha removal, ...).
    public var notes: [String]

    public var sopInstanceUID: String { dataset.string(.sopInstanceUID) ?? "" }
    public var sopClassUID: String { dataset.string(.sopClassUID) ?? "" }

    public init(dataset: Dataset, transferSyntaxUID: String, notes: [String] = []) {
        self.dataset = dataset
        self.transferSyntaxUID = transferSyntaxUID
        self.notes = notes
    }
}

/// Turns JPEG and PNG photographs into VL Photographic Image Storage objects (Modality XC).
///
/// JPEG is kept as it was compressed: the entropy-coded data is copied bit for bit into a single fragment under
/// JPEG Baseline or Extended. Application segments (EXIF, XMP, GPS, maker notes, thumbnails, IPTC) and comments
/// are removed; capture time and camera go to DICOM attributes. JPEGs that have no valid VL Photographic encoding
/// as they are (4:4:4 YCbCr, progressive) are decoded by DCMTK to RGB and stored uncompressed, marked lossy;
/// arithmetic-coded, 12-bit, lossless, hierarchical and CMYK JPEGs are refused with the reason.
public enum PhotoConverter {
    /// Largest photograph accepted, per side and in total (a 100 MP medium-format frame fits).
    public static let maximumDimension: UInt32 = 30000
    public static let maximumPixels: UInt64 = 120_000_000

    /// Where the photo sits in its series.
    public struct Placement: Sendable {
        public var seriesInstanceUID: String
        public var seriesNumber: Int
        public var instanceNumber: Int

        public init(seriesInstanceUID: String, seriesNumber: Int, instanceNumber: Int) {
            self.seriesInstanceUID = seriesInstanceUID
            self.seriesNumber = seriesNumber
            self.instanceNumber = instanceNumber
        }
    }

    public enum Kind: Sendable { case jpeg, png }

    /// Recognises JPEG and PNG by their first bytes, never by the file name.
    public static func kind(of data: Data) -> Kind? {
        if data.count >= 3, data[data.startIndex] == 0xFF, data[data.startIndex + 1] == 0xD8,
            data[data.startIndex + 2] == 0xFF
        {
            return .jpeg
        }
        if data.count >= 8, data.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        return nil
    }

    /// How many pixels converting `data` decodes into memory, read from its header alone: a PNG's every pixel, a
    /// JPEG's only when it cannot be stored as it came (progressive or full-resolution chroma); nil when the
    /// header cannot be read (conversion then says why).
    public static func decodedPixels(of data: Data) -> UInt64? {
        switch kind(of: data) {
        case .png:
            // IHDR is the first chunk: width and height, big-endian, at bytes 16-23.
            guard data.count >= 24 else { return nil }
            let bytes = [UInt8](data.prefix(24))
            let width = bytes[16..<20].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let height = bytes[20..<24].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            // Each at most 2^31 - 1 (PNG's own limit), so the product fits; beyond it the header is not a PNG's.
            guard width > 0, height > 0, width < 1 << 31, height < 1 << 31 else { return nil }
            return width * height
        case .jpeg:
            guard let jpeg = try? JPEGStream.parse(data), jpeg.rows >= 0, jpeg.columns >= 0 else { return nil }
            let decodes =
                jpeg.process == .progressive
                || (jpeg.components.count == 3 && !jpeg.isRGB && !jpeg.isChromaSubsampled)
            return decodes ? UInt64(jpeg.rows) * UInt64(jpeg.columns) : 0
        case nil:
            return nil
        }
    }

    public static func convert(_ data: Data, context: InstanceContext, placement: Placement) throws(DICOMCodecError)
        -> PreparedInstance
    {
        switch kind(of: data) {
        case .jpeg: return try convertJPEG(data, context: context, placement: placement)
        case .png: return try convertPNG(data, context: context, placement: placement)
        case nil:
            if data.isEmpty { throw DICOMCodecError(.invalidImage, "file is empty") }
            throw DICOMCodecError(.invalidImage, "not a JPEG or PNG image (unrecognised signature)")
        }
    }

    // MARK: JPEG

    static func convertJPEG(_ data: Data, context: InstanceContext, placement: Placement) throws(DICOMCodecError)
        -> PreparedInstance
    {
        let jpeg = try JPEGStream.parse(data)
        switch jpeg.process {
        case .arithmetic:
            throw DICOMCodecError(
                .unsupported,
                "arithmetic-coded JPEG: DICOM has no transfer syntax for it and DCMTK cannot decode it; re-export as baseline JPEG"
            )
        case .lossless:
            throw DICOMCodecError(
                .unsupported, "lossless JPEG (SOF3) photographs are not supported; export baseline JPEG or PNG")
        case .hierarchical:
            throw DICOMCodecError(.unsupported, "hierarchical JPEG is not supported; re-export as baseline JPEG")
        default: break
        }
        guard jpeg.precision == 8 else {
            throw DICOMCodecError(
                .unsupported, "\(jpeg.precision)-bit JPEG: VL Photographic Image requires 8 bits per sample")
        }
        guard jpeg.components.count == 1 || jpeg.components.count == 3 else {
            throw DICOMCodecError(
                .unsupported,
                "\(jpeg.components.count)-component (CMYK/YCCK) JPEG has no VL Photographic representation; convert it to RGB first"
            )
        }
        guard jpeg.rows > 0, jpeg.columns > 0 else {
            throw DICOMCodecError(.unsupported, "JPEG with height defined by a DNL marker is not supported")
        }
        guard UInt32(jpeg.rows) <= maximumDimension, UInt32(jpeg.columns) <= maximumDimension,
            UInt64(jpeg.rows) * UInt64(jpeg.columns) <= maximumPixels
        else {
            throw DICOMCodecError(.limitExceeded, "JPEG of \(jpeg.columns)x\(jpeg.rows) pixels exceeds the size limit")
        }
        let exif = jpeg.exif.map(EXIF.parse)
        let samples = jpeg.components.count
        let uncompressedSize = Double(jpeg.rows * jpeg.columns * samples)
        let ratio = uncompressedSize / Double(max(jpeg.stripped.count, 1))

        // Decide whether the compressed stream can be stored as it is.
        var photometric: String
        var transferSyntax: String?
        if samples == 1 {
            photometric = "MONOCHROME2"
        } else if jpeg.isRGB {
            photometric = "RGB"
        } else if jpeg.isChromaSubsampled {
            photometric = "YBR_FULL_422"
        } else {
            photometric = "YBR_FULL"
        }
        let keepsStream = photometric != "YBR_FULL" && jpeg.process != .progressive
        if keepsStream { transferSyntax = jpeg.process == .baseline ? UID.jpegBaseline : UID.jpegExtended }
        var notes: [String] = []
        let removed = jpeg.removedSegments.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }
        if !removed.isEmpty { notes.append("removed JPEG segments: " + removed.joined(separator: ", ")) }

        let pixelValue: Value
        // What decoding did, for Derivation Description (nil when the JPEG is stored as it came).
        var derivation: String?
        if keepsStream {
            pixelValue = .fragments([jpeg.stripped])
        } else {
            // Decoding with the transfer syntax the stream was coded in; progressive has its own (retired) one.
            let codedSyntax =
                jpeg.process == .progressive
                ? UID.jpegProgressive : (jpeg.process == .baseline ? UID.jpegBaseline : UID.jpegExtended)
            let pixels = try DCMTK.decodeJPEG(
                jpeg.stripped, transferSyntax: codedSyntax, rows: jpeg.rows, columns: jpeg.columns,
                samplesPerPixel: samples,
                photometric: photometric)
            pixelValue = .bytes(pixels)
            derivation =
                jpeg.process == .progressive
                ? "progressive JPEG decoded by DCMTK and stored uncompressed"
                : "4:4:4 YCbCr JPEG (YBR_FULL, not allowed in VL Photographic) decoded by DCMTK and stored uncompressed as RGB"
            notes.append(derivation ?? "")
            if samples == 3 { photometric = "RGB" }
        }

        let captureDateTime = exif?.acquisitionDateTime
        let captureDate = captureDateTime.map { String($0.prefix(8)) }
        let captureTime = captureDateTime.map { String($0.dropFirst(8).prefix(6)) }
        var dataset = context.baseDataset(
            sopClassUID: UID.vlPhotographicImageStorage, sopInstanceUID: context.uids.make(),
            seriesInstanceUID: placement.seriesInstanceUID, modality: "XC", seriesNumber: placement.seriesNumber,
            instanceNumber: placement.instanceNumber, captureDate: captureDate, captureTime: captureTime)
        addEquipment(&dataset, make: exif?.make, model: exif?.model, context: context)
        addImageAttributes(
            &dataset, context: context, captureDateTime: captureDateTime, imageType: ["ORIGINAL", "PRIMARY"])
        addImagePixel(&dataset, samples: samples, photometric: photometric, rows: jpeg.rows, columns: jpeg.columns)
        dataset.set(.lossyImageCompression, .CS, "01")
        dataset.set(.lossyImageCompressionRatio, .DS, formatRatio(ratio))
        dataset.set(.lossyImageCompressionMethod, .CS, "ISO_10918_1")
        if let orientation = exif?.orientation, orientation != 1, (2...8).contains(orientation) {
            addOrientation(&dataset, exifOrientation: orientation)
            notes.append("EXIF orientation \(orientation) recorded; pixels kept as captured")
        }
        if let icc = jpeg.iccProfile, icc.count <= 4 << 20, icc.count >= 128 {
            dataset.set(DataElement(.iccProfile, .OB, .bytes(icc)))
        }
        if let derivation { dataset.set(.derivationDescription, .ST, derivation) }
        dataset.set(DataElement(.pixelData, .OB, pixelValue))
        return PreparedInstance(
            dataset: dataset, transferSyntaxUID: transferSyntax ?? UID.explicitVRLittleEndian, notes: notes)
    }

    // MARK: PNG

    static func convertPNG(_ data: Data, context: InstanceContext, placement: Placement) throws(DICOMCodecError)
        -> PreparedInstance
    {
        let (info, pixels) = try DCMTK.decodePNG(data, maxDimension: maximumDimension, maxPixels: maximumPixels)
        let samples = Int(info.samples_per_pixel)
        var notes: [String] = []
        var derivation: [String] = []
        if info.source_color_type == 3 { derivation.append("palette expanded to RGB") }
        if info.source_bit_depth == 16 { derivation.append("16-bit samples scaled to 8 bits") }
        if info.had_alpha != 0 { derivation.append("alpha composited over white") }
        if info.source_bit_depth < 8 && info.source_color_type == 0 { derivation.append("gray widened to 8 bits") }
        notes.append(contentsOf: derivation)

        var dataset = context.baseDataset(
            sopClassUID: UID.vlPhotographicImageStorage, sopInstanceUID: context.uids.make(),
            seriesInstanceUID: placement.seriesInstanceUID, modality: "XC", seriesNumber: placement.seriesNumber,
            instanceNumber: placement.instanceNumber)
        addEquipment(&dataset, make: nil, model: nil, context: context)
        addImageAttributes(&dataset, context: context, captureDateTime: nil, imageType: ["ORIGINAL", "PRIMARY"])
        addImagePixel(
            &dataset, samples: samples, photometric: samples == 1 ? "MONOCHROME2" : "RGB", rows: Int(info.height),
            columns: Int(info.width))
        dataset.set(.lossyImageCompression, .CS, "00")
        if !derivation.isEmpty {
            dataset.set(.derivationDescription, .ST, "Converted from PNG: " + derivation.joined(separator: "; "))
        }
        dataset.set(DataElement(.pixelData, .OB, .bytes(pixels)))
        return PreparedInstance(dataset: dataset, transferSyntaxUID: UID.explicitVRLittleEndian, notes: notes)
    }

    // MARK: shared modules

    /// Image Pixel module for 8-bit unsigned interleaved pixels.
    static func addImagePixel(_ dataset: inout Dataset, samples: Int, photometric: String, rows: Int, columns: Int) {
        dataset.set(.samplesPerPixel, .US, unsigned: UInt64(samples))
        dataset.set(.photometricInterpretation, .CS, photometric)
        if samples == 3 { dataset.set(.planarConfiguration, .US, unsigned: 0) }
        dataset.set(.rows, .US, unsigned: UInt64(rows))
        dataset.set(.columns, .US, unsigned: UInt64(columns))
        dataset.set(.bitsAllocated, .US, unsigned: 8)
        dataset.set(.bitsStored, .US, unsigned: 8)
        dataset.set(.highBit, .US, unsigned: 7)
        dataset.set(.pixelRepresentation, .US, unsigned: 0)
    }

    static func addEquipment(_ dataset: inout Dataset, make: String?, model: String?, context: InstanceContext) {
        let manufacturer = context.metadata.manufacturer ?? make.map(clean)
        dataset.set(.manufacturer, .LO, strings: manufacturer.map { [$0] } ?? [])
        if let model = context.metadata.manufacturerModelName ?? model.map(clean) {
            dataset.set(.manufacturerModelName, .LO, model)
        }
        if let serial = context.metadata.deviceSerialNumber { dataset.set(.deviceSerialNumber, .LO, serial) }
        dataset.set(.softwareVersions, .LO, context.metadata.softwareVersions ?? "Facet \(context.softwareVersion)")
    }

    /// General Image, VL Image, Acquisition Context and anatomy attributes.
    static func addImageAttributes(
        _ dataset: inout Dataset, context: InstanceContext, captureDateTime: String?, imageType: [String]
    ) {
        let metadata = context.metadata
        dataset.set(.imageType, .CS, strings: imageType)
        dataset.set(.contentDate, .DA, captureDateTime.map { String($0.prefix(8)) } ?? context.nowDate)
        dataset.set(.contentTime, .TM, captureDateTime.map { String($0.dropFirst(8).prefix(6)) } ?? context.nowTime)
        if let captureDateTime { dataset.set(.acquisitionDateTime, .DT, captureDateTime) }
        dataset.set(.patientOrientation, .CS, strings: [])
        if let laterality = metadata.laterality {
            dataset.set(.imageLaterality, .CS, laterality)
        } else if metadata.region?.isPaired ?? true {
            // Series Laterality is Type 2C (needed for paired body parts when Image Laterality is absent): present
            // and empty says "not known". For an unpaired region (the face) it must be absent.
            dataset.set(.laterality, .CS, strings: [])
        }
        if let region = metadata.region { dataset.set(.anatomicRegionSequence, sequence: [region.code.item]) }
        var context: [Dataset] = []
        if let view = metadata.view { context.append(codeContentItem(PhotoView.conceptName, view.code)) }
        if let timing = metadata.timing { context.append(codeContentItem(Timing.conceptName, timing.code)) }
        dataset.set(.acquisitionContextSequence, sequence: context)
    }

    static func codeContentItem(_ name: CodedConcept, _ value: CodedConcept) -> Dataset {
        var item = Dataset()
        item.set(.valueType, .CS, "CODE")
        item.set(.conceptNameCodeSequence, sequence: [name.item])
        item.set(.conceptCodeSequence, sequence: [value.item])
        return item
    }

    /// Records a non-upright EXIF orientation in Facet's private block so that renderers can turn the view
    /// upright; the pixels stay as captured so that the JPEG data is untouched.
    static func addOrientation(_ dataset: inout Dataset, exifOrientation: Int) {
        dataset.set(Tag(0x0009, 0x0010), .LO, PrivateTags.creator)
        dataset.set(DataElement(PrivateTags.exifOrientation, .US, .unsigned([UInt64(exifOrientation)])))
    }

    static func formatRatio(_ ratio: Double) -> String {
        let text = String(format: "%.2f", ratio)
        return text.count <= 16 ? text : String(Int(ratio))
    }

    static func clean(_ text: String) -> String {
        String(text.filter { $0 != "\\" && !$0.isNewline && ($0.asciiValue.map { $0 >= 0x20 } ?? true) }.prefix(64))
    }
}

/// Facet's private data elements (group 0009, creator `FACET 1.0`).
public enum PrivateTags {
    public static let creator = "FACET 1.0"
    /// EXIF orientation (1–8) of the captured pixels; absent when upright.
    public static let exifOrientation = Tag(0x0009, 0x1001)
}
