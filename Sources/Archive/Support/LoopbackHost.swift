/// Loopback names and addresses: where plain HTTP crosses no network.
public enum LoopbackHost {
    /// Whether a bare host (lower case, no port, no IPv6 brackets) is `localhost`, `::1` or in 127.0.0.0/8.
    public static func contains(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare == "localhost" || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}
