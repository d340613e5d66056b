import DICOMCore
import Foundation
import Testing

@testable import DICOMCodec

/// The export watermarks (issue 12 §3): the invisible mark is read back blind after the file is re-encoded at JPEG
/// quality 75 and resized to half, and is not found in a photo that never had one; the visible one changes the
/// corner it is drawn in; exported JPEGs carry no metadata.
@Suite struct WatermarkTests {
    static let photos = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata/photos")

    static func photo(_ name: String) throws -> RGBImage {
        try RGBImage.decode(try Data(contentsOf: photos.appendingPathComponent(name)))
    }

    let payload = Watermark.Payload(
        practice: Watermark.practiceCode("Lakeside Aesthetics"), pseudonym: 0xA1B2C3, mark: 0x3F00E1)

    @Test(arguments: ["phone-gps.jpg", "ycbcr-444.jpg", "rgb.png"])
    func theInvisibleMarkSurvivesQuality75AndAHalfSizeResize(_ name: String) throws {
        var image = try Self.photo(name)
        // Small fixtures are enlarged first: exports are at least this size in practice.
        if image.width < 640 { image = image.resized(width: image.width * 2, height: image.height * 2) }
        #expect(Watermark.read(image) == nil, "no mark before one is written")
        let original = image
        Watermark.drawVisible("© Lakeside Aesthetics", on: &image)
        try Watermark.embed(payload, into: &image)
        let exported = try image.jpeg(quality: 90)
        let received = try RGBImage.decode(exported)
        #expect(Watermark.read(received) == payload)
        // A gallery's treatment: half size, then JPEG at quality 75.
        let half = received.resized(width: received.width / 2, height: received.height / 2)
        let shared = try RGBImage.decode(try half.jpeg(quality: 75))
        #expect(Watermark.read(shared) == payload)
        // Invisible: the mean change is small (a few grey levels at most anywhere, far less on average).
        var total = 0
        var largest = 0
        let visible = original.width * original.height * 3 / 5
        for index in 0..<visible {
            let difference = abs(Int(image.pixels[index]) - Int(original.pixels[index]))
            total += difference
            largest = max(largest, difference)
        }
        #expect(
            Double(total) / Double(visible) < 2.5 && largest <= 8,
            "mean \(Double(total) / Double(visible)), max \(largest)")
    }

    @Test func theVisibleMarkIsInTheLowerRightCorner() throws {
        let original = try Self.photo("phone-gps.jpg")
        var marked = original
        Watermark.drawVisible("© Lakeside Aesthetics", on: &marked)
        func changed(_ x0: Int, _ x1: Int, _ y0: Int, _ y1: Int) -> Int {
            var count = 0
            for y in y0..<y1 {
                for x in x0..<x1
                where marked.pixels[(y * original.width + x) * 3] != original.pixels[(y * original.width + x) * 3] {
                    count += 1
                }
            }
            return count
        }
        let (w, h) = (original.width, original.height)
        #expect(changed(w / 2, w, h * 3 / 4, h) > 500)
        #expect(changed(0, w / 2, 0, h / 2) == 0)
    }

    @Test func exportedJPEGsCarryNoMetadataAndAnExifOrientationIsApplied() throws {
        let source = try Data(contentsOf: Self.photos.appendingPathComponent("rotated-exif6.jpg"))
        let image = try RGBImage.decode(source)
        let upright = image.oriented(6)
        #expect(upright.width == image.height && upright.height == image.width)
        // The first stored row, turned clockwise, is the last shown column.
        #expect(upright.pixels[(upright.width - 1) * 3] == image.pixels[0])
        let jpeg = try upright.jpeg(quality: 85)
        var markers: [UInt8] = []
        var offset = 2
        let bytes = [UInt8](jpeg)
        while offset + 4 <= bytes.count, bytes[offset] == 0xFF, bytes[offset + 1] != 0xDA {
            markers.append(bytes[offset + 1])
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            offset += 2 + length
        }
        #expect(markers.first == 0xE0, "JFIF")
        #expect(
            !markers.contains { (0xE1...0xEF).contains($0) || $0 == 0xFE }, "no EXIF, XMP, IPTC or comment: \(markers)")
    }

    @Test func aMarkThatDoesNotCheckIsNotReported() throws {
        var image = try Self.photo("phone-gps.jpg")
        try Watermark.embed(payload, into: &image)
        // Cropping a third away moves the grid: nothing (rather than a wrong mark) is read.
        let kept = image.width * 2 / 3
        var pixels: [UInt8] = []
        for row in 0..<image.height {
            let start = row * image.width * 3
            pixels += image.pixels[start..<(start + kept * 3)]
        }
        let cropped = RGBImage(width: kept, height: image.height, pixels: pixels)
        #expect(Watermark.read(cropped) == nil)
    }
}
