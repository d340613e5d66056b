import DICOMCore
import Foundation
import Testing

@testable import DICOMCodec

@Suite struct JPEGConversionTests {
    @Test func entropyCodedDataIsCopiedBitForBit() throws {
        let source = try Fixtures.data("photos/phone-gps.jpg")
        let instance = try PhotoConverter.convert(
            source, context: try Fixtures.context(), placement: Fixtures.placement)
        let (url, file) = try Fixtures.roundTrip(instance)
        let stream = try JPEGStream.parse(source)
        let scans = source[stream.sourceScanRange]
        #expect(scans.count > 1000)
        let written = try Data(contentsOf: url)
        #expect(written.containsBytes(scans))
        #expect(file.transferSyntaxUID == UID.jpegBaseline)
        #expect(file.dataset.string(.photometricInterpretation) == "YBR_FULL_422")
        #expect(file.dataset.string(.sopClassUID) == UID.vlPhotographicImageStorage)
        #expect(file.dataset.string(.modality) == "XC")
        #expect(file.dataset.string(.lossyImageCompression) == "01")
    }

    @Test func exifXMPGPSAndCommentsDoNotSurvive() throws {
        let source = try Fixtures.data("photos/phone-gps.jpg")
        #expect(source.containsBytes(Data("Exif".utf8)))
        #expect(source.containsBytes(Data("Jane Example".utf8)))
        let instance = try PhotoConverter.convert(
            source, context: try Fixtures.context(), placement: Fixtures.placement)
        let written = try Data(contentsOf: try Fixtures.roundTrip(instance).url)
        for marker in ["Exif", "Jane Example", "xmpmeta", "FacetPhone OS", "clinic room"] {
            #expect(!written.containsBytes(Data(marker.utf8)), "\(marker) survived")
        }
        // No APP1 (EXIF/XMP) or COM marker in the stored JPEG.
        #expect(!written.containsBytes(Data([0xFF, 0xE1])))
        #expect(!written.containsBytes(Data([0xFF, 0xFE, 0x00])))
    }

    @Test func captureTimeAndCameraMapToDICOMAttributes() throws {
        let source = try Fixtures.data("photos/phone-gps.jpg")
        let instance = try PhotoConverter.convert(
            source, context: try Fixtures.context(), placement: Fixtures.placement)
        let dataset = try Fixtures.roundTrip(instance).file.dataset
        #expect(dataset.string(.acquisitionDateTime) == "20260314092653.123+0100")
        #expect(dataset.string(.contentDate) == "20260314")
        #expect(dataset.string(.contentTime) == "092653")
        #expect(dataset.string(.manufacturer) == "FacetPhone Inc.")
        #expect(dataset.string(.manufacturerModelName) == "FP-12 Pro")
        #expect(dataset[PrivateTags.exifOrientation] == nil)
    }

    @Test func exifOrientationIsRecordedAndPixelsAreKept() throws {
        let source = try Fixtures.data("photos/rotated-exif6.jpg")
        let instance = try PhotoConverter.convert(
            source, context: try Fixtures.context(), placement: Fixtures.placement)
        let dataset = try Fixtures.roundTrip(instance).file.dataset
        #expect(dataset.int(PrivateTags.exifOrientation) == 6)
        #expect(dataset.string(Tag(0x0009, 0x0010)) == PrivateTags.creator)
        #expect(dataset.int(.rows) == 640)
        #expect(dataset.int(.columns) == 480)
    }

    @Test func subsampledAndGrayJPEGsKeepTheirCompressedData() throws {
        for (name, photometric) in [("photos/ycbcr-422.jpg", "YBR_FULL_422"), ("photos/gray.jpg", "MONOCHROME2")] {
            let source = try Fixtures.data(name)
            let instance = try PhotoConverter.convert(
                source, context: try Fixtures.context(), placement: Fixtures.placement)
            #expect(instance.transferSyntaxUID == UID.jpegBaseline)
            #expect(instance.dataset.string(.photometricInterpretation) == photometric)
            let stream = try JPEGStream.parse(source)
            #expect(
                try Data(contentsOf: try Fixtures.roundTrip(instance).url).containsBytes(source[stream.sourceScanRange])
            )
        }
    }

    @Test func fullResolutionChromaAndProgressiveAreDecodedByDCMTKToRGB() throws {
        for name in ["photos/ycbcr-444.jpg", "photos/progressive.jpg"] {
            let instance = try PhotoConverter.convert(
                try Fixtures.data(name), context: try Fixtures.context(), placement: Fixtures.placement)
            #expect(instance.transferSyntaxUID == UID.explicitVRLittleEndian)
            let dataset = try Fixtures.roundTrip(instance).file.dataset
            #expect(dataset.string(.photometricInterpretation) == "RGB")
            #expect(dataset.string(.lossyImageCompression) == "01")
            #expect(dataset.string(.lossyImageCompressionMethod) == "ISO_10918_1")
            let pixels = try #require(dataset.data(.pixelData))
            #expect(pixels.count == 320 * 240 * 3)
            // The fixture's red channel ramps from 0 at the left edge to 255 at the right (exact pixels are
            // compared against Pillow's decoder in the conformance suite).
            let left = (0..<240).map { Int(pixels[$0 * 320 * 3]) }.reduce(0, +) / 240
            let right = (0..<240).map { Int(pixels[($0 * 320 + 319) * 3]) }.reduce(0, +) / 240
            #expect(right - left > 100)
        }
    }

    @Test func derivationDescriptionNamesTheDecodingEvenWhenOrientationIsRecorded() throws {
        // A progressive JPEG given an EXIF orientation of 6 (little-endian TIFF, one IFD entry).
        var tiff: [UInt8] = Array("Exif".utf8) + [0, 0, 0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0]
        tiff += [0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]
        let source = try Fixtures.data("photos/progressive.jpg")
        let segment = Data([0xFF, 0xE1, UInt8((tiff.count + 2) >> 8), UInt8((tiff.count + 2) & 0xFF)] + tiff)
        let jpeg = source.prefix(2) + segment + source.dropFirst(2)
        let dataset = try Fixtures.roundTrip(
            try PhotoConverter.convert(jpeg, context: try Fixtures.context(), placement: Fixtures.placement)
        ).file.dataset
        #expect(dataset.int(PrivateTags.exifOrientation) == 6)
        #expect(dataset.string(.derivationDescription)?.contains("progressive JPEG decoded") == true)
    }

    @Test(arguments: [
        ("photos/arithmetic.jpg", "arithmetic"), ("photos/cmyk.jpg", "CMYK"), ("photos/twelve-bit.jpg", "12-bit"),
        ("bad/truncated.jpg", "truncated"), ("bad/text.jpg", "not a JPEG or PNG"), ("bad/empty.jpg", "empty"),
    ])
    func unsupportedOrBrokenJPEGsAreRefusedWithTheReason(_ name: String, _ reason: String) throws {
        let context = try Fixtures.context()
        let error = #expect(throws: DICOMCodecError.self) {
            try PhotoConverter.convert(try Fixtures.data(name), context: context, placement: Fixtures.placement)
        }
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
    }

    @Test func jpegParserRefusesSegmentsThatRunPastTheEnd() {
        var bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xDB, 0xFF, 0xF0, 1, 2]
        #expect(throws: DICOMCodecError.self) { try JPEGStream.parse(Data(bytes)) }
        bytes = [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 8, 0, 1, 0, 1, 9, 1, 0x11, 0]
        #expect(throws: DICOMCodecError.self) { try JPEGStream.parse(Data(bytes)) }
    }

    @Test func exifParserIgnoresOffsetsOutsideTheSegment() {
        // Big-endian TIFF whose IFD0 points far beyond the data.
        let exif = EXIF.parse(Data([0x4D, 0x4D, 0, 42, 0x7F, 0xFF, 0xFF, 0xFF]))
        #expect(exif.make == nil && exif.orientation == nil)
        let looped = EXIF.parse(
            Data([0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x0F, 0x01, 2, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0]))
        #expect(looped.make == nil)
    }
}
