import Archive
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One part of a multipart body: its headers and its content, held in memory when small, otherwise in an
/// encrypted spool file (never in the clear on disk).
public struct MultipartPart: Sendable {
    /// Header names lower-cased.
    public var headers: [String: String]
    public var size: Int
    let memory: Data?
    let spool: SealedSpool?

    public var contentType: MediaType? { headers["content-type"].flatMap(MediaType.init) }

    /// The part's content.
    public func data() throws(ArchiveError) -> Data {
        if let memory { return memory }
        guard let spool else { return Data() }
        return try spool.readAll()
    }

    /// The `filename` of a Content-Disposition header (multipart/form-data), if any.
    public var fileName: String? { dispositionParameter("filename") }
    /// The `name` of a Content-Disposition header (multipart/form-data), if any.
    public var fieldName: String? { dispositionParameter("name") }

    private func dispositionParameter(_ name: String) -> String? {
        // `form-data; name="photo"; filename="a.jpg"` has the parameter syntax of a media type.
        guard let disposition = headers["content-disposition"], let semicolon = disposition.firstIndex(of: ";") else {
            return nil
        }
        return MediaType("x/x" + disposition[semicolon...])?.parameters[name]
    }
}

/// Errors of multipart parsing, with the HTTP status they deserve.
public struct MultipartError: Error, Sendable, CustomStringConvertible, Equatable {
    public var status: Int
    public var message: String
    public var description: String { message }
}

/// Streams a `multipart/related` (or any multipart) body part by part: bytes arrive in chunks of any size through
/// `consume`. Parts are kept in memory while the request's parts together stay within `memoryBudget`; beyond it,
/// a part goes to an encrypted spool file as it arrives, so memory stays bounded. Sizes of headers, parts and
/// the whole body are bounded.
public final class MultipartRelatedReader {
    public struct Limits: Sendable {
        public var maximumPartBytes: Int
        public var maximumBodyBytes: Int
        public var maximumHeaderBytes: Int
        public var maximumParts: Int
        /// Bytes of part content one request may hold in memory before parts are spooled.
        public var memoryBudget: Int

        public init(
            maximumPartBytes: Int = 2 << 30, maximumBodyBytes: Int = 8 << 30, maximumHeaderBytes: Int = 16 << 10,
            maximumParts: Int = 10_000, memoryBudget: Int = 64 << 20
        ) {
            self.memoryBudget = memoryBudget
            self.maximumPartBytes = maximumPartBytes
            self.maximumBodyBytes = maximumBodyBytes
            self.maximumHeaderBytes = maximumHeaderBytes
            self.maximumParts = maximumParts
        }
    }

    /// `afterDelimiter`: a delimiter was seen and consumed; what follows decides (close, or padding and CRLF).
    private enum State { case preamble, afterDelimiter, headers, body, epilogue }

    /// Longest boundary accepted. RFC 2046 allows 70 characters; Orthanc's DICOMweb client sends 73, and other
    /// archives accept longer ones.
    public static let maximumBoundaryLength = 256
    /// Most transport padding (spaces, tabs) accepted after a boundary: RFC 2046 allows it, not megabytes of it.
    public static let maximumTransportPadding = 1024

    private let delimiter: [UInt8]  // "\r\n--boundary"
    private let limits: Limits
    private let folder: URL
    private var state = State.preamble
    private var buffer: [UInt8] = []
    private var total = 0
    private var headers: [String: String] = [:]
    private var memory: [UInt8] = []
    private var memoryTotal = 0
    private var spool: SealedSpool?
    private var inPart = false
    private var partSize = 0
    /// Transport padding skipped since the last delimiter.
    private var padding = 0
    public private(set) var parts: [MultipartPart] = []

    /// `contentType` is the request's Content-Type; its `boundary` parameter (quoted or not) is required.
    public init(contentType: String, temporaryFolder: URL, limits: Limits = Limits()) throws(MultipartError) {
        guard let media = MediaType(contentType), media.type == "multipart" else {
            throw MultipartError(status: 415, message: "Content-Type is not multipart")
        }
        guard let boundary = media.parameters["boundary"], !boundary.isEmpty,
            boundary.utf8.count <= Self.maximumBoundaryLength
        else {
            throw MultipartError(status: 400, message: "multipart Content-Type has no valid boundary")
        }
        delimiter = Array("\r\n--\(boundary)".utf8)
        self.limits = limits
        folder = temporaryFolder
        // The first delimiter may start the body without a preceding CRLF.
        buffer = Array("\r\n".utf8)
        total = -2
    }

    /// Feeds the next bytes of the body.
    public func consume(_ bytes: some Sequence<UInt8>) throws(MultipartError) {
        let before = buffer.count
        buffer.append(contentsOf: bytes)
        total += buffer.count - before
        guard total <= limits.maximumBodyBytes else {
            throw MultipartError(status: 413, message: "request body exceeds \(limits.maximumBodyBytes >> 20) MiB")
        }
        try process()
    }

    /// Call at the end of the body; returns the parts. Fails when the closing delimiter never came.
    public func finish() throws(MultipartError) -> [MultipartPart] {
        try process()
        guard state == .epilogue else {
            discardCurrentPart()
            throw MultipartError(status: 400, message: "multipart body ends before its closing boundary")
        }
        return parts
    }

    /// Removes the spool files of all parts.
    public func removeFiles() {
        discardCurrentPart()
        for part in parts { part.spool?.remove() }
    }

    private func process() throws(MultipartError) {
        while true {
            switch state {
            case .preamble:
                guard let found = find(delimiter, from: 0) else {
                    // Keep only what could still begin a delimiter.
                    if buffer.count > delimiter.count { buffer.removeFirst(buffer.count - delimiter.count) }
                    return
                }
                buffer.removeFirst(found + delimiter.count)
                delimiterSeen()
            case .afterDelimiter:
                guard try afterDelimiter() else { return }
            case .headers:
                if buffer.count >= 2 && buffer[0] == 0x0D && buffer[1] == 0x0A {
                    // No headers: the blank line comes at once.
                    buffer.removeFirst(2)
                    try startPart()
                    state = .body
                    continue
                }
                guard buffer.count >= 2 else { return }
                guard let end = find(Array("\r\n\r\n".utf8), from: 0) else {
                    guard buffer.count <= limits.maximumHeaderBytes else {
                        throw MultipartError(
                            status: 400, message: "part headers exceed \(limits.maximumHeaderBytes) bytes")
                    }
                    return
                }
                guard end <= limits.maximumHeaderBytes else {
                    throw MultipartError(status: 400, message: "part headers exceed \(limits.maximumHeaderBytes) bytes")
                }
                try parseHeaders(Array(buffer[0..<end]))
                buffer.removeFirst(end + 4)
                try startPart()
                state = .body
            case .body:
                if let found = find(delimiter, from: 0) {
                    try write(buffer[0..<found])
                    buffer.removeFirst(found + delimiter.count)
                    try endPart()
                    delimiterSeen()
                } else {
                    // Everything but a possible partial delimiter at the end can go to the file.
                    let safe = buffer.count - (delimiter.count - 1)
                    if safe > 0 {
                        try write(buffer[0..<safe])
                        buffer.removeFirst(safe)
                    }
                    return
                }
            case .epilogue:
                buffer.removeAll()
                return
            }
        }
    }

    private func delimiterSeen() {
        state = .afterDelimiter
        padding = 0
    }

    /// After a delimiter: `--` closes the body, otherwise optional transport padding and CRLF start a part. Padding
    /// is consumed as it arrives (never re-scanned) and bounded. Returns false when more bytes are needed.
    private func afterDelimiter() throws(MultipartError) -> Bool {
        if padding == 0 && buffer.first == 0x2D {
            guard buffer.count >= 2 else { return false }
            guard buffer[1] == 0x2D else {
                throw MultipartError(status: 400, message: "multipart boundary is not followed by a line end")
            }
            state = .epilogue
            buffer.removeAll()
            return true
        }
        var index = 0
        while index < buffer.count && (buffer[index] == 0x20 || buffer[index] == 0x09) { index += 1 }
        padding += index
        guard padding <= Self.maximumTransportPadding else {
            throw MultipartError(status: 400, message: "too much transport padding after a boundary")
        }
        if index > 0 { buffer.removeFirst(index) }
        guard buffer.count >= 2 else {
            if let first = buffer.first, first != 0x0D {
                throw MultipartError(status: 400, message: "multipart boundary is not followed by a line end")
            }
            return false
        }
        guard buffer[0] == 0x0D && buffer[1] == 0x0A else {
            throw MultipartError(status: 400, message: "multipart boundary is not followed by a line end")
        }
        buffer.removeFirst(2)
        guard parts.count < limits.maximumParts else {
            throw MultipartError(status: 413, message: "more than \(limits.maximumParts) parts")
        }
        headers = [:]
        state = .headers
        return true
    }

    private func parseHeaders(_ bytes: [UInt8]) throws(MultipartError) {
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.components(separatedBy: "\r\n") where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else {
                throw MultipartError(status: 400, message: "a part header line has no colon")
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = value
        }
    }

    private func startPart() throws(MultipartError) {
        inPart = true
        memory = []
        spool = nil
        partSize = 0
    }

    private func write(_ bytes: ArraySlice<UInt8>) throws(MultipartError) {
        guard !bytes.isEmpty, inPart else { return }
        partSize += bytes.count
        guard partSize <= limits.maximumPartBytes else {
            throw MultipartError(status: 413, message: "a part exceeds \(limits.maximumPartBytes >> 20) MiB")
        }
        do {
            if let spool {
                try spool.append(bytes)
            } else if memoryTotal + partSize > limits.memoryBudget {
                let file = try SealedSpool(folder: folder)
                try file.append(memory)
                try file.append(bytes)
                memory = []
                spool = file
            } else {
                memory.append(contentsOf: bytes)
            }
        } catch {
            throw MultipartError(status: 500, message: "temporary part file cannot be written")
        }
    }

    private func endPart() throws(MultipartError) {
        guard inPart else { return }
        inPart = false
        if let spool {
            do { try spool.close() } catch {
                throw MultipartError(status: 500, message: "temporary part file cannot be written")
            }
            parts.append(MultipartPart(headers: headers, size: partSize, memory: nil, spool: spool))
        } else {
            memoryTotal += memory.count
            parts.append(MultipartPart(headers: headers, size: partSize, memory: Data(memory), spool: nil))
        }
        memory = []
        spool = nil
    }

    private func discardCurrentPart() {
        spool?.remove()
        spool = nil
        memory = []
        inPart = false
    }

    /// First index of `needle` in the buffer at or after `start`: memchr to each candidate first byte, then
    /// memcmp, so the body is scanned at memory speed.
    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard buffer.count - start >= needle.count, let first = needle.first else { return nil }
        return buffer.withUnsafeBytes { haystack in
            needle.withUnsafeBytes { pattern in
                guard let base = haystack.baseAddress, let patternBase = pattern.baseAddress else { return nil }
                var index = start
                let last = haystack.count - needle.count
                while index <= last {
                    guard let hit = memchr(base + index, Int32(first), last - index + 1) else { return nil }
                    let offset = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + offset, patternBase, needle.count) == 0 { return offset }
                    index = offset + 1
                }
                return nil
            }
        }
    }
}
