import DICOMCore
import Foundation
import Testing

@testable import DICOMCodec

/// Frames and renders of multi-frame objects: one parse for many frames, the real frame count, only the asked frame
/// decoded, work bounded before decoding, no upscaling, and no integer trap whatever frame number is asked.
@Suite struct FrameAndRenderTests {
    /// A native 8-bit MONOCHROME2 object of `rows` x `columns` whose frame `n` (1-based) has every pixel `n * 40`,
    /// except frame 2, whose left half is 0 and right half 255. `declared` is its Number of Frames.
    static func multiFrame(
        rows: Int = 4, columns: Int = 4, frames: Int = 3, declared: String? = nil, bitsAllocated: UInt64 = 8
    ) throws -> Data {
        try Part10.initialize()
        var dataset = Dataset()
        dataset.set(.sopClassUID, .UI, "1.2.840.10008.5.1.4.1.1.7.2")
        dataset.set(.sopInstanceUID, .UI, "1.2.3.4.5.6")
        dataset.set(.studyInstanceUID, .UI, "1.2.3.4")
        dataset.set(.seriesInstanceUID, .UI, "1.2.3.4.5")
        dataset.set(.samplesPerPixel, .US, unsigned: 1)
        dataset.set(.photometricInterpretation, .CS, "MONOCHROME2")
        dataset.set(.numberOfFrames, .IS, declared ?? "\(frames)")
        dataset.set(.rows, .US, unsigned: UInt64(rows))
        dataset.set(.columns, .US, unsigned: UInt64(columns))
        dataset.set(.bitsAllocated, .US, unsigned: bitsAllocated)
        dataset.set(.bitsStored, .US, unsigned: bitsAllocated)
        dataset.set(.highBit, .US, unsigned: bitsAllocated - 1)
        dataset.set(.pixelRepresentation, .US, unsigned: 0)
        var pixels = Data()
        for frame in 1...max(frames, 1) where frames > 0 {
            for _ in 0..<rows {
                for column in 0..<columns {
                    if frame == 2 {
                        pixels.append(column < columns / 2 ? 0 : 255)
                    } else {
                        pixels.append(UInt8(frame * 40))
                    }
                }
            }
        }
        if pixels.isEmpty { pixels = Data([0, 0]) }
        dataset.set(DataElement(.pixelData, .OB, .bytes(pixels)))
        return try Part10.encode(dataset, transferSyntax: UID.explicitVRLittleEndian)
    }

    static func pixels(ofPNG png: Data) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        let (info, pixels) = try DCMTK.decodePNG(png, maxDimension: 1 << 14, maxPixels: 1 << 28)
        return (Int(info.width), Int(info.height), [UInt8](pixels))
    }

    @Test func severalFramesComeFromOneParseInTheOrderAskedWithRepeats() throws {
        let object = try Self.multiFrame()
        let frames = try Rendering.frames([3, 1, 3, 2], of: object)
        #expect(frames.count == 4)
        #expect(frames[0] == Data(repeating: 120, count: 16))
        #expect(frames[1] == Data(repeating: 40, count: 16))
        #expect(frames[2] == frames[0])
        #expect(frames[3].prefix(4) == Data([0, 0, 255, 255]))
    }

    @Test func theRealNumberOfFramesIsWhatThePixelDataHolds() throws {
        #expect(try Rendering.numberOfFrames(of: try Self.multiFrame()) == 3)
        // Declares 1000 frames, holds 3.
        let overstated = try Self.multiFrame(declared: "1000")
        #expect(try Rendering.numberOfFrames(of: overstated) == 3)
        let error = #expect(throws: DICOMCodecError.self) { try Rendering.frames([4], of: overstated) }
        #expect(error?.code == .noSuchFrame)
    }

    @Test func aFrameNumberBeyondThirtyTwoBitsIsNoSuchFrameNotATrap() throws {
        let object = try Self.multiFrame()
        for number in [4, 4_294_967_297, Int.max] {
            let read = #expect(throws: DICOMCodecError.self) { try Rendering.frame(number, of: object) }
            #expect(read?.code == .noSuchFrame)
            let render = #expect(throws: DICOMCodecError.self) {
                try Rendering.render(object, frame: number, format: .png)
            }
            #expect(render?.code == .noSuchFrame)
        }
    }

    @Test func renderingFrameTwoShowsFrameTwo() throws {
        let object = try Self.multiFrame()
        let image = try Self.pixels(ofPNG: try Rendering.render(object, frame: 2, format: .png))
        #expect(image.width == 4 && image.height == 4)
        #expect(Array(image.pixels.prefix(4)) == [0, 0, 255, 255])
    }

    @Test func aFrameDeclaringHugeDecodedPixelDataIsRefusedBeforeDecoding() throws {
        // One frame of 14000 x 14000 x 64 bits declared (1.5 GiB decoded), a few bytes present.
        let huge = try Self.multiFrame(rows: 14000, columns: 14000, frames: 0, declared: "1", bitsAllocated: 64)
        let error = #expect(throws: DICOMCodecError.self) { try Rendering.render(huge, format: .png) }
        #expect(error?.code == .limitExceeded)
        #expect(error?.message.contains("1 GiB") == true)
    }

    @Test func decompressingAnObjectDeclaringHugePixelDataIsRefusedBeforeDecoding() throws {
        // JPEG-compressed, 4096 x 4096 x 16 bits x 2^31-1 frames declared, one tiny fragment present: decompressing
        // would allocate every declared frame at once.
        try Part10.initialize()
        var dataset = Dataset()
        dataset.set(.sopClassUID, .UI, "1.2.840.10008.5.1.4.1.1.7.2")
        dataset.set(.sopInstanceUID, .UI, "1.2.3.4.5.7")
        dataset.set(.studyInstanceUID, .UI, "1.2.3.4")
        dataset.set(.seriesInstanceUID, .UI, "1.2.3.4.5")
        dataset.set(.samplesPerPixel, .US, unsigned: 1)
        dataset.set(.photometricInterpretation, .CS, "MONOCHROME2")
        dataset.set(.numberOfFrames, .IS, "2147483647")
        dataset.set(.rows, .US, unsigned: 4096)
        dataset.set(.columns, .US, unsigned: 4096)
        dataset.set(.bitsAllocated, .US, unsigned: 16)
        dataset.set(.bitsStored, .US, unsigned: 12)
        dataset.set(.highBit, .US, unsigned: 11)
        dataset.set(.pixelRepresentation, .US, unsigned: 0)
        dataset.set(DataElement(.pixelData, .OB, .fragments([Data([0xFF, 0xD8, 0xFF, 0xD9])])))
        let object = try Part10.encode(dataset, transferSyntax: "1.2.840.10008.1.2.4.51")
        let error = #expect(throws: DICOMCodecError.self) {
            try Rendering.transcode(object, to: UID.explicitVRLittleEndian)
        }
        #expect(error?.code == .limitExceeded)
    }

    @Test func aViewportNeverUpscalesAndKeepsTheAspect() throws {
        let object = try Self.multiFrame(rows: 8, columns: 16)
        let whole = try Self.pixels(
            ofPNG: try Rendering.render(object, format: .png, viewport: .init(width: 8192, height: 8192)))
        #expect(whole.width == 16 && whole.height == 8)
        let region = try Self.pixels(
            ofPNG: try Rendering.render(
                object, format: .png, viewport: .init(width: 8192, height: 8192, region: [0, 0, 4, 2])))
        #expect(region.width == 4 && region.height == 2)
        let smaller = try Self.pixels(
            ofPNG: try Rendering.render(object, format: .png, viewport: .init(width: 8, height: 8)))
        #expect(smaller.width == 8 && smaller.height == 4)
    }
}
