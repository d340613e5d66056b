import DICOMCore
import Foundation
import Testing

@testable import DICOMCodec

@Suite struct PNGConversionTests {
    func convert(_ png: Data) throws -> Dataset {
        let instance = try PhotoConverter.convert(png, context: try Fixtures.context(), placement: Fixtures.placement)
        #expect(instance.transferSyntaxUID == UID.explicitVRLittleEndian)
        return try Fixtures.roundTrip(instance).file.dataset
    }

    @Test func rgbPixelsAreStoredExactly() throws {
        let width = 7
        let height = 5
        var lines: [[UInt8]] = []
        for y in 0..<height {
            var line: [UInt8] = []
            for x in 0..<width { line += [UInt8(x * 30), UInt8(y * 50), UInt8((x * y) % 256)] }
            lines.append(line)
        }
        let dataset = try convert(
            TinyPNG.encode(width: width, height: height, bitDepth: 8, colorType: 2, scanlines: lines))
        #expect(dataset.string(.photometricInterpretation) == "RGB")
        #expect(dataset.int(.samplesPerPixel) == 3)
        #expect(dataset.int(.rows) == height && dataset.int(.columns) == width)
        #expect(dataset.string(.lossyImageCompression) == "00")
        #expect(dataset.data(.pixelData).map([UInt8].init) == lines.flatMap { $0 } + [0])  // padded to even length
    }

    @Test func grayStaysOneSample() throws {
        let lines: [[UInt8]] = (0..<4).map { y in (0..<6).map { x in UInt8(x * 40 + y) } }
        let dataset = try convert(TinyPNG.encode(width: 6, height: 4, bitDepth: 8, colorType: 0, scanlines: lines))
        #expect(dataset.string(.photometricInterpretation) == "MONOCHROME2")
        #expect(dataset.int(.samplesPerPixel) == 1)
        #expect(dataset.data(.pixelData).map([UInt8].init) == lines.flatMap { $0 })
    }

    @Test func paletteIsExpandedToRGB() throws {
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255]
        let lines: [[UInt8]] = [[0, 1, 2, 1], [2, 2, 0, 0]]
        let dataset = try convert(
            TinyPNG.encode(width: 4, height: 2, bitDepth: 8, colorType: 3, scanlines: lines, palette: palette))
        let expected = lines.flatMap { $0 }.flatMap { Array(palette[Int($0) * 3..<Int($0) * 3 + 3]) }
        #expect(dataset.data(.pixelData).map([UInt8].init) == expected)
        #expect(dataset.string(.derivationDescription)?.contains("palette") == true)
    }

    @Test func alphaIsCompositedOverWhite() throws {
        let pixel: [UInt8] = [100, 0, 200, 128]
        let opaque: [UInt8] = [10, 20, 30, 255]
        let clear: [UInt8] = [10, 20, 30, 0]
        let dataset = try convert(
            TinyPNG.encode(width: 3, height: 1, bitDepth: 8, colorType: 6, scanlines: [pixel + opaque + clear]))
        func over(_ value: Int, _ alpha: Int) -> UInt8 { UInt8((value * alpha + 255 * (255 - alpha) + 127) / 255) }
        let expected: [UInt8] = [over(100, 128), over(0, 128), over(200, 128), 10, 20, 30, 255, 255, 255]
        #expect(dataset.data(.pixelData).map { Array($0.prefix(9)) } == expected)
        #expect(dataset.string(.derivationDescription)?.contains("alpha") == true)
    }

    @Test func sixteenBitIsScaledWithRounding() throws {
        let samples: [UInt16] = [0, 257, 32896, 65535]
        let line = samples.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let dataset = try convert(TinyPNG.encode(width: 4, height: 1, bitDepth: 16, colorType: 0, scanlines: [line]))
        #expect(dataset.data(.pixelData).map([UInt8].init) == [0, 1, 128, 255])
    }

    @Test func oneBitGrayIsWidened() throws {
        let dataset = try convert(
            TinyPNG.encode(width: 8, height: 1, bitDepth: 1, colorType: 0, scanlines: [[0b1010_0000]]))
        #expect(dataset.data(.pixelData).map([UInt8].init) == [255, 0, 255, 0, 0, 0, 0, 0])
    }

    @Test func oversizedHeaderIsRefusedBeforeAllocation() throws {
        let context = try Fixtures.context()
        let error = #expect(throws: DICOMCodecError.self) {
            try PhotoConverter.convert(
                try Fixtures.data("bad/bomb.png"), context: context, placement: Fixtures.placement)
        }
        #expect(error?.code == .limitExceeded)
        #expect(error?.message.contains("100000x100000") == true)
    }

    @Test func truncatedPNGIsRefused() throws {
        let full = TinyPNG.encode(
            width: 64, height: 64, bitDepth: 8, colorType: 2,
            scanlines: Array(repeating: Array(repeating: 7, count: 192), count: 64))
        let context = try Fixtures.context()
        #expect(throws: DICOMCodecError.self) {
            try PhotoConverter.convert(full.prefix(full.count / 2), context: context, placement: Fixtures.placement)
        }
    }
}
