import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Audit messages to a syslog collector over TLS (RFC 5425, as PS3.15 A.5 asks): each DICOM audit message is the
/// MSG of an RFC 5424 message (facility authpriv, severity notice, APP-NAME `facet`, MSGID `DICOM+RFC3881`, UTF-8 with
/// its BOM), framed by octet counting (`LEN SP MSG`). The collector's certificate is verified against `caFile` (or
/// the system's trust store) and its name.
public final class SyslogSender: @unchecked Sendable {
    let host: String
    let port: Int
    let context: NIOSSLContext
    private let lock = NSLock()
    private var channel: Channel?

    public init(host: String, port: Int, caFile: String?) throws(ArchiveError) {
        self.host = host
        self.port = port
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        do {
            if let caFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ArchiveError(.invalidInput, "the syslog collector's CA certificate cannot be read")
        }
    }

    /// One message, framed: `LEN SP <PRI>1 TIMESTAMP HOST APP PROCID MSGID - BOM MSG`.
    public static func frame(_ xml: String, time: String, hostname: String) -> Data {
        let host = hostname.isEmpty ? "-" : String(hostname.filter { $0.isASCII && $0 > " " }.prefix(255))
        // authpriv (10) × 8 + notice (5)
        let message =
            Data("<85>1 \(time) \(host) facet \(getpid()) DICOM+RFC3881 - ".utf8) + Data([0xEF, 0xBB, 0xBF])
            + Data(xml.utf8)
        return Data("\(message.count) ".utf8) + message
    }

    /// Sends the frames in order on the open connection (opened first when there is none); on any failure the
    /// connection is closed and the error thrown (the caller sends the same frames again later).
    public func send(_ frames: [Data]) async throws(ArchiveError) {
        do {
            // A collector that accepts and then stalls (the handshake, or its reads) does not hold the forwarder:
            // after 30 s the connection is dropped and the frames are sent again later.
            try await withDeadline(seconds: 30) { [self] in
                let channel = try await connection()
                var buffer = channel.allocator.buffer(capacity: frames.reduce(0) { $0 + $1.count })
                for frame in frames { buffer.writeBytes(frame) }
                try await channel.writeAndFlush(buffer).get()
            }
        } catch {
            close()
            throw ArchiveError(.unavailable, "the syslog collector cannot be reached")
        }
    }

    private func connection() async throws -> Channel {
        if let open = lock.withLock({ channel }), open.isActive { return open }
        let (context, host) = (self.context, self.host)
        let opened = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: host))
                }
            }
            .connect(host: host, port: port).get()
        lock.withLock { channel = opened }
        return opened
    }

    public func close() {
        let open = lock.withLock { () -> Channel? in
            defer { channel = nil }
            return channel
        }
        open?.close(promise: nil)
    }
}
