import DICOMCore
import Foundation

/// An 8-bit RGB picture in memory (interleaved, rows top to bottom): what a photo becomes on its way out of the
/// archive (exports, share links) and what a file that left it is read back as.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Largest picture read from a file (each side) and in pixels.
    public static let maximumSide: UInt32 = 20_000
    public static let maximumPixels: UInt64 = 100_000_000

    /// A JPEG or PNG file, decoded (PNG transparency composited over white).
    public static func decode(_ file: Data) throws(DICOMCodecError) -> RGBImage {
        if file.starts(with: [0xFF, 0xD8]) {
            let (width, height, pixels) = try DCMTK.decodeJPEGFile(
                file, maxDimension: maximumSide, maxPixels: maximumPixels)
            return RGBImage(width: width, height: height, pixels: [UInt8](pixels))
        }
        if file.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            let (info, pixels) = try DCMTK.decodePNG(file, maxDimension: maximumSide, maxPixels: maximumPixels)
            let (width, height) = (Int(info.width), Int(info.height))
            if info.samples_per_pixel == 3 { return RGBImage(width: width, height: height, pixels: [UInt8](pixels)) }
            var rgb = [UInt8](repeating: 0, count: width * height * 3)
            for index in 0..<(width * height) {
                let gray = pixels[pixels.startIndex + index]
                (rgb[index * 3], rgb[index * 3 + 1], rgb[index * 3 + 2]) = (gray, gray, gray)
            }
            return RGBImage(width: width, height: height, pixels: rgb)
        }
        throw DICOMCodecError(.unsupported, "the file is neither a JPEG nor a PNG")
    }

    /// Frame 1 of a stored photo, rendered by DCMTK (scaled to fit `longestSide`, never enlarged) and turned upright
    /// as its EXIF orientation (kept in Facet's private element) says.
    public static func render(_ part10: Data, longestSide: Int, exifOrientation: Int?) throws(DICOMCodecError)
        -> RGBImage
    {
        let side = UInt32(max(1, longestSide))
        let png = try Rendering.render(
            part10, format: .png, viewport: Rendering.Viewport(width: side, height: side))
        return try decode(png).oriented(exifOrientation ?? 1)
    }

    /// Baseline JPEG, no metadata markers (no EXIF, XMP, GPS, IPTC, ICC, comments).
    public func jpeg(quality: Int) throws(DICOMCodecError) -> Data {
        try DCMTK.encodeJPEG(pixels, width: width, height: height, quality: quality)
    }

    /// The picture as EXIF orientation `orientation` (1–8) says it should be shown.
    public func oriented(_ orientation: Int) -> RGBImage {
        guard (2...8).contains(orientation) else { return self }
        let swaps = orientation >= 5
        let (outWidth, outHeight) = swaps ? (height, width) : (width, height)
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                // Where the shown pixel (x, y) is in the stored picture.
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (width - 1 - x, y)
                case 3: (sx, sy) = (width - 1 - x, height - 1 - y)
                case 4: (sx, sy) = (x, height - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, height - 1 - x)
                case 7: (sx, sy) = (width - 1 - y, height - 1 - x)
                default: (sx, sy) = (width - 1 - y, x)
                }
                let source = (sy * width + sx) * 3
                let target = (y * outWidth + x) * 3
                out[target] = pixels[source]
                out[target + 1] = pixels[source + 1]
                out[target + 2] = pixels[source + 2]
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: out)
    }

    /// Scaled to `newWidth` × `newHeight` by area averaging (each output pixel the mean of the source area it
    /// covers): what a gallery's downscale does.
    public func resized(width newWidth: Int, height newHeight: Int) -> RGBImage {
        guard newWidth > 0, newHeight > 0 else { return self }
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        let (scaleX, scaleY) = (Double(width) / Double(newWidth), Double(height) / Double(newHeight))
        for y in 0..<newHeight {
            let (y0, y1) = (Double(y) * scaleY, Double(y + 1) * scaleY)
            for x in 0..<newWidth {
                let (x0, x1) = (Double(x) * scaleX, Double(x + 1) * scaleX)
                var sum = (0.0, 0.0, 0.0)
                var area = 0.0
                for sy in Int(y0)..<min(height, Int(y1.rounded(.up))) {
                    let wy = min(y1, Double(sy + 1)) - max(y0, Double(sy))
                    for sx in Int(x0)..<min(width, Int(x1.rounded(.up))) {
                        let w = wy * (min(x1, Double(sx + 1)) - max(x0, Double(sx)))
                        let index = (sy * width + sx) * 3
                        sum.0 += w * Double(pixels[index])
                        sum.1 += w * Double(pixels[index + 1])
                        sum.2 += w * Double(pixels[index + 2])
                        area += w
                    }
                }
                let target = (y * newWidth + x) * 3
                out[target] = UInt8(min(255, max(0, (sum.0 / area).rounded())))
                out[target + 1] = UInt8(min(255, max(0, (sum.1 / area).rounded())))
                out[target + 2] = UInt8(min(255, max(0, (sum.2 / area).rounded())))
            }
        }
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }
}
