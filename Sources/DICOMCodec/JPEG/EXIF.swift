import Foundation

/// The few EXIF fields Facet maps to DICOM (capture time, camera, orientation), read from a TIFF structure with
/// every offset checked against the bytes present. Everything else (GPS, maker notes, owner names, thumbnails)
/// is never copied anywhere.
struct EXIF: Sendable, Equatable {
    var make: String?
    var model: String?
    /// 1–8 as in TIFF; 1 is upright.
    var orientation: Int?
    /// `YYYY:MM:DD HH:MM:SS` as written by the camera.
    var dateTimeOriginal: String?
    var subSecondOriginal: String?
    /// `+HH:MM` / `-HH:MM`.
    var offsetTimeOriginal: String?
    var hasGPS: Bool

    static func parse(_ data: Data) -> EXIF {
        var result = EXIF(hasGPS: false)
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { return result }
        let little: Bool
        switch (bytes[0], bytes[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return result
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= bytes.count else { return nil }
            return little ? Int(bytes[at]) | Int(bytes[at + 1]) << 8 : Int(bytes[at]) << 8 | Int(bytes[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let a = u16(at), let b = u16(at + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(2) == 42, let ifd0 = u32(4) else { return result }

        typealias Entry = (type: Int, count: Int, valueOffset: Int)
        func entries(_ ifd: Int) -> [Int: Entry] {
            guard let count = u16(ifd), count <= 512 else { return [:] }
            var found: [Int: Entry] = [:]
            for index in 0..<count {
                let base = ifd + 2 + 12 * index
                guard let tag = u16(base), let type = u16(base + 2), let n = u32(base + 4) else { break }
                found[tag] = (type, n, base + 8)
            }
            return found
        }
        func ascii(_ entry: Entry?) -> String? {
            guard let entry, entry.type == 2, entry.count > 0, entry.count <= 256 else { return nil }
            let start = entry.count <= 4 ? entry.valueOffset : (u32(entry.valueOffset) ?? -1)
            guard start >= 0, start + entry.count <= bytes.count else { return nil }
            var slice = Array(bytes[start..<(start + entry.count)])
            while let last = slice.last, last == 0 || last == 0x20 { slice.removeLast() }
            let text = String(decoding: slice, as: UTF8.self)
            return text.isEmpty ? nil : text
        }
        func short(_ entry: Entry?) -> Int? {
            guard let entry, entry.type == 3, entry.count >= 1 else { return nil }
            return u16(entry.valueOffset)
        }
        let zero = entries(ifd0)
        result.make = ascii(zero[0x010F])
        result.model = ascii(zero[0x0110])
        result.orientation = short(zero[0x0112])
        result.hasGPS = zero[0x8825] != nil
        if let pointer = zero[0x8769], let exifIFD = u32(pointer.valueOffset) {
            let sub = entries(exifIFD)
            result.dateTimeOriginal = ascii(sub[0x9003])
            result.subSecondOriginal = ascii(sub[0x9291])
            result.offsetTimeOriginal = ascii(sub[0x9011])
        }
        if result.dateTimeOriginal == nil { result.dateTimeOriginal = ascii(zero[0x0132]) }
        return result
    }

    /// Capture time as a DICOM DT (`YYYYMMDDHHMMSS[.FFFFFF][&ZZXX]`), if the camera wrote a plausible one.
    var acquisitionDateTime: String? {
        guard let text = dateTimeOriginal else { return nil }
        let digits = text.filter(\.isNumber)
        guard text.count == 19, digits.count == 14, !digits.hasPrefix("0000") else { return nil }
        var value = digits
        if let sub = subSecondOriginal?.filter(\.isNumber), !sub.isEmpty { value += "." + sub.prefix(6) }
        if let offset = offsetTimeOriginal, offset.count == 6, let sign = offset.first, sign == "+" || sign == "-" {
            let zone = offset.dropFirst().filter(\.isNumber)
            if zone.count == 4 { value += String(sign) + zone }
        }
        return value
    }
}
