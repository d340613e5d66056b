import Foundation

/// A ZIP archive written as a stream (PKWARE APPNOTE 6.3): each entry is stored (photos are JPEG already; deflating
/// them gains nothing) with its CRC-32 and sizes in its local header, so an entry is sent as soon as it is made and
/// nothing but the small central directory is kept until the end. Entries and the archive stay under the classic
/// limits (65,535 entries, 4 GiB): `add` refuses what would cross them. Names are UTF-8 (flag bit 11).
public struct ZipWriter: Sendable {
    struct Entry {
        var name: Data
        var crc: UInt32
        var size: UInt32
        var offset: UInt32
    }

    private var entries: [Entry] = []
    private var offset: UInt64 = 0
    private let time: UInt16
    private let date: UInt16

    public init(date: Date = Date()) {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let hour = UInt16(parts.tm_hour) << 11
        let minute = UInt16(parts.tm_min) << 5
        time = hour | minute | UInt16(parts.tm_sec / 2)
        let year = UInt16(max(0, parts.tm_year - 80)) << 9
        let month = UInt16(parts.tm_mon + 1) << 5
        self.date = year | month | UInt16(parts.tm_mday)
    }

    /// The bytes of one entry (local header and data), to be sent in order.
    public mutating func add(_ name: String, _ data: Data) throws(ArchiveError) -> Data {
        let nameBytes = Data(name.utf8)
        guard entries.count < 65_535, nameBytes.count < 65_536,
            offset + UInt64(30 + nameBytes.count + data.count) < UInt64(UInt32.max) - (1 << 24)
        else { throw ArchiveError(.tooLarge, "the archive would exceed 65,535 files or 4 GiB; narrow the filters") }
        let entry = Entry(
            name: nameBytes, crc: Self.crc32(data), size: UInt32(data.count), offset: UInt32(offset))
        var out = Data()
        out.append(le32: 0x0403_4B50)
        out.append(le16: 20)  // version needed: 2.0
        out.append(le16: 1 << 11)  // UTF-8 names
        out.append(le16: 0)  // stored
        out.append(le16: time)
        out.append(le16: date)
        out.append(le32: entry.crc)
        out.append(le32: entry.size)
        out.append(le32: entry.size)
        out.append(le16: UInt16(nameBytes.count))
        out.append(le16: 0)
        out.append(nameBytes)
        out.append(data)
        entries.append(entry)
        offset += UInt64(out.count)
        return out
    }

    /// The central directory and its end record.
    public func finish() -> Data {
        var out = Data()
        for entry in entries {
            out.append(le32: 0x0201_4B50)
            out.append(le16: 20)  // made by: 2.0, MS-DOS attributes
            out.append(le16: 20)
            out.append(le16: 1 << 11)
            out.append(le16: 0)
            out.append(le16: time)
            out.append(le16: date)
            out.append(le32: entry.crc)
            out.append(le32: entry.size)
            out.append(le32: entry.size)
            out.append(le16: UInt16(entry.name.count))
            out.append(le16: 0)  // extra
            out.append(le16: 0)  // comment
            out.append(le16: 0)  // disk
            out.append(le16: 0)  // internal attributes
            out.append(le32: 0)  // external attributes
            out.append(le32: entry.offset)
            out.append(entry.name)
        }
        let directorySize = UInt32(out.count)
        out.append(le32: 0x0605_4B50)
        out.append(le16: 0)
        out.append(le16: 0)
        out.append(le16: UInt16(entries.count))
        out.append(le16: UInt16(entries.count))
        out.append(le32: directorySize)
        out.append(le32: UInt32(offset))
        out.append(le16: 0)
        return out
    }

    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    /// CRC-32 (ISO 3309, as ZIP and PNG use it).
    public static func crc32(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        data.withUnsafeBytes { raw in
            for byte in raw { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}

extension Data {
    fileprivate mutating func append(le16 value: UInt16) {
        append(contentsOf: [UInt8(value & 0xFF), UInt8(value >> 8)])
    }

    fileprivate mutating func append(le32 value: UInt32) {
        append(contentsOf: (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }
}
