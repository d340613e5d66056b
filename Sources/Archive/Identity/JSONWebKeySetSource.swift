import Foundation

/// Where an identity provider's key set (JWKS) is read from: a file, or an `https://` URL (`http://` only for a
/// loopback host, where nothing crosses a network).
public enum JSONWebKeySetSource: Sendable, Hashable, CustomStringConvertible {
    case file(String)
    case url(URL)

    /// A fetch of the URL ends after this many seconds.
    public static let timeout: TimeInterval = 10

    /// The `oidc-jwks` setting: a URL when it has a scheme, otherwise a file path.
    public init(_ location: String) throws(ArchiveError) {
        guard location.contains("://") else {
            guard !location.isEmpty else { throw ArchiveError(.invalidInput, "oidc-jwks is empty") }
            self = .file(location)
            return
        }
        guard let url = URL(string: location), let scheme = url.scheme?.lowercased(), let host = url.host,
            !host.isEmpty
        else { throw ArchiveError(.invalidInput, "oidc-jwks is not a valid URL") }
        guard scheme == "https" || (scheme == "http" && LoopbackHost.contains(host)) else {
            throw ArchiveError(
                .invalidInput, "oidc-jwks must be a file, an https:// URL, or an http:// URL of a loopback host")
        }
        self = .url(url)
    }

    public var description: String {
        switch self {
        case .file(let path): path
        case .url(let url): url.absoluteString
        }
    }

    /// Reads and parses the key set. Blocks: a file read, or a fetch of up to `timeout` seconds.
    func load() throws(ArchiveError) -> JSONWebKeySet {
        switch self {
        case .file(let path):
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw ArchiveError(.io, "the key set file \(path) cannot be read")
            }
            defer { try? handle.close() }
            // One byte more than allowed tells a file at the limit from a larger one.
            let data: Data?
            do {
                data = try handle.read(upToCount: JSONWebKeySet.maximumBytes + 1)
            } catch {
                throw ArchiveError(.io, "the key set file \(path) cannot be read")
            }
            return try JSONWebKeySet(json: data ?? Data())
        case .url(let url):
            switch BoundedDownload.get(url, maximumBytes: JSONWebKeySet.maximumBytes, timeout: Self.timeout) {
            case .success(let data):
                return try JSONWebKeySet(json: data)
            case .failure(let failure):
                throw ArchiveError(.io, "the key set at \(url.absoluteString): \(failure.message)")
            }
        }
    }
}
