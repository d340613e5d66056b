import DICOMCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension HTTPField.Name {
    // Not among swift-http-types' names.
    static let warning = HTTPField.Name("Warning")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
}

/// A failure a handler reports: the HTTP status and one line safe to show (never PHI).
struct HTTPFailure: Error {
    var status: HTTPResponse.Status
    var message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
}

enum Responses {
    static func bytes(_ data: Data, status: HTTPResponse.Status = .ok, contentType: String, extra: HTTPFields = [:])
        -> Response
    {
        var headers = extra
        headers[.contentType] = contentType
        headers[.contentLength] = String(data.count)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok, contentType: String, extra: HTTPFields = [:])
        -> Response
    {
        bytes(Data(text.utf8), status: status, contentType: contentType, extra: extra)
    }

    /// An error answer: a small JSON object naming the status and the reason.
    static func failure(_ failure: HTTPFailure, extra: HTTPFields = [:]) -> Response {
        let body = "{\"status\":\(failure.status.code),\"error\":\(jsonString(failure.message))}"
        return text(body, status: failure.status, contentType: "application/json", extra: extra)
    }

    static func jsonString(_ text: String) -> String { DICOMJSON.quote(text) }

    static func boundary() -> String { "facet-" + UUID().uuidString.lowercased() }

    /// One part of a multipart body: content type, optional Content-Location, bytes.
    typealias Part = (contentType: String, location: String?, data: Data)

    /// A multipart/related body of `count` parts that `part` makes one at a time while the body is written: each
    /// write waits until the connection has taken the previous bytes, so a slow client holds at most one part in
    /// memory and nothing is produced ahead of it.
    static func multipart(
        type: String, boundary: String, count: Int, status: HTTPResponse.Status = .ok, extra: HTTPFields = [:],
        part: @escaping @Sendable (Int) async throws -> Part
    ) -> Response {
        var headers = extra
        headers[.contentType] = "multipart/related; type=\"\(type)\"; boundary=\"\(boundary)\""
        let body = ResponseBody { writer in
            for index in 0..<count {
                let (contentType, location, data) = try await part(index)
                var head = "--\(boundary)\r\nContent-Type: \(contentType)\r\n"
                if let location { head += "Content-Location: \(location)\r\n" }
                head += "Content-Length: \(data.count)\r\n\r\n"
                var buffer = ByteBuffer(string: head)
                buffer.writeBytes(data)
                buffer.writeString("\r\n")
                try await writer.write(buffer)
            }
            try await writer.write(ByteBuffer(string: "--\(boundary)--\r\n"))
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// A multipart/related body of parts already in memory.
    static func multipart(
        type: String, parts: [(contentType: String, location: String?, data: Data)], extra: HTTPFields = [:]
    )
        -> Response
    {
        let boundary = boundary()
        var body = Data()
        for part in parts {
            var head = "--\(boundary)\r\nContent-Type: \(part.contentType)\r\n"
            if let location = part.location { head += "Content-Location: \(location)\r\n" }
            head += "Content-Length: \(part.data.count)\r\n\r\n"
            body.append(Data(head.utf8))
            body.append(part.data)
            body.append(Data("\r\n".utf8))
        }
        body.append(Data("--\(boundary)--\r\n".utf8))
        return bytes(body, contentType: "multipart/related; type=\"\(type)\"; boundary=\"\(boundary)\"", extra: extra)
    }
}
