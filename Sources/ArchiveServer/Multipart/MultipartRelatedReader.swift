import Foundation

/// One part of a multipart body: its headers and its content, spooled to a private temporary file.
public struct MultipartPart: Sendable {
    /// Header names lower-cased.
    public var headers: [String: String]
    public var file: URL
    public var size: Int

    public var contentType: MediaType? { headers["content-type"].flatMap(MediaType.init) }
}

/// Errors of multipart parsing, with the HTTP status they deserve.
public struct MultipartError: Error, Sendable, CustomStringConvertible, Equatable {
    public var status: Int
    public var message: String
    public var description: String { message }
}

/// Streams a `multipart/related` (or any multipart) body part by part: bytes arrive in chunks of any size through
/// `consume`, each part's content goes to a temporary file as it arrives, and nothing larger than one chunk plus
/// the boundary is held in memory. Sizes of headers, parts and the whole body are bounded.
public final class MultipartRelatedReader {
    public struct Limits: Sendable {
        public var maximumPartBytes: Int
        public var maximumBodyBytes: Int
        public var maximumHeaderBytes: Int
        public var maximumParts: Int

        public init(
            maximumPartBytes: Int = 2 << 30, maximumBodyBytes: Int = 8 << 30, maximumHeaderBytes: Int = 16 << 10,
            maximumParts: Int = 10_000
        ) {
            self.maximumPartBytes = maximumPartBytes
            self.maximumBodyBytes = maximumBodyBytes
            self.maximumHeaderBytes = maximumHeaderBytes
            self.maximumParts = maximumParts
        }
    }

    private enum State { case preamble, headers, body, epilogue }

    private let delimiter: [UInt8]  // "\r\n--boundary"
    private let limits: Limits
    private let folder: URL
    private var state = State.preamble
    private var buffer: [UInt8] = []
    private var total = 0
    private var headers: [String: String] = [:]
    private var handle: FileHandle?
    private var partURL: URL?
    private var partSize = 0
    public private(set) var parts: [MultipartPart] = []

    /// `contentType` is the request's Content-Type; its `boundary` parameter (quoted or not) is required.
    public init(contentType: String, temporaryFolder: URL, limits: Limits = Limits()) throws(MultipartError) {
        guard let media = MediaType(contentType), media.type == "multipart" else {
            throw MultipartError(status: 415, message: "Content-Type is not multipart")
        }
        guard let boundary = media.parameters["boundary"], !boundary.isEmpty, boundary.utf8.count <= 70 else {
            throw MultipartError(status: 400, message: "multipart Content-Type has no valid boundary")
        }
        delimiter = Array("\r\n--\(boundary)".utf8)
        self.limits = limits
        folder = temporaryFolder
        // The first delimiter may start the body without a preceding CRLF.
        buffer = Array("\r\n".utf8)
        total = -2
    }

    deinit {
        try? handle?.close()
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

    /// Removes the temporary files of all parts.
    public func removeFiles() {
        discardCurrentPart()
        for part in parts { try? FileManager.default.removeItem(at: part.file) }
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
                    guard try afterDelimiter() else { return }
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

    /// After a delimiter: `--` closes the body, otherwise optional transport padding and CRLF start a part.
    /// Returns false when more bytes are needed.
    private func afterDelimiter() throws(MultipartError) -> Bool {
        guard buffer.count >= 2 else {
            // Re-scan once more bytes arrive: put the delimiter back.
            buffer = delimiter + buffer
            state = .preamble
            return false
        }
        if buffer[0] == 0x2D && buffer[1] == 0x2D {
            state = .epilogue
            buffer.removeAll()
            return true
        }
        var index = 0
        while index < buffer.count && (buffer[index] == 0x20 || buffer[index] == 0x09) { index += 1 }
        guard index + 1 < buffer.count else {
            buffer = delimiter + buffer
            state = .preamble
            return false
        }
        guard buffer[index] == 0x0D && buffer[index + 1] == 0x0A else {
            throw MultipartError(status: 400, message: "multipart boundary is not followed by a line end")
        }
        buffer.removeFirst(index + 2)
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
        let url = folder.appendingPathComponent("part-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]),
            let file = try? FileHandle(forWritingTo: url)
        else { throw MultipartError(status: 500, message: "temporary part file cannot be created") }
        handle = file
        partURL = url
        partSize = 0
    }

    private func write(_ bytes: ArraySlice<UInt8>) throws(MultipartError) {
        guard !bytes.isEmpty, let handle else { return }
        partSize += bytes.count
        guard partSize <= limits.maximumPartBytes else {
            throw MultipartError(status: 413, message: "a part exceeds \(limits.maximumPartBytes >> 20) MiB")
        }
        do {
            try handle.write(contentsOf: Data(bytes))
        } catch {
            throw MultipartError(status: 500, message: "temporary part file cannot be written")
        }
    }

    private func endPart() throws(MultipartError) {
        guard let handle, let partURL else { return }
        try? handle.close()
        self.handle = nil
        self.partURL = nil
        parts.append(MultipartPart(headers: headers, file: partURL, size: partSize))
    }

    private func discardCurrentPart() {
        try? handle?.close()
        handle = nil
        if let partURL { try? FileManager.default.removeItem(at: partURL) }
        partURL = nil
    }

    /// First index of `needle` in the buffer at or after `start`.
    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        let first = needle[0]
        var index = start
        let last = buffer.count - needle.count
        while index <= last {
            if buffer[index] == first {
                var matched = true
                for k in 1..<needle.count where buffer[index + k] != needle[k] {
                    matched = false
                    break
                }
                if matched { return index }
            }
            index += 1
        }
        return nil
    }
}
