extension ArchiveError.Code {
    /// A login or client-credentials request failed. The message is the same for every cause.
    public static let invalidCredentials = ArchiveError.Code(name: "invalid-credentials")
    /// A bearer token is malformed, forged, expired, revoked or idle.
    public static let invalidToken = ArchiveError.Code(name: "invalid-token")
    /// The thing to create exists already (a username in its tenant, a client id).
    public static let conflict = ArchiveError.Code(name: "conflict")
    /// A value given by a caller is not acceptable (a username, a role, a password that is too short).
    public static let invalidInput = ArchiveError.Code(name: "invalid-input")
    /// The access policy refused the request.
    public static let forbidden = ArchiveError.Code(name: "forbidden")
}
