import Foundation

/// Issues and verifies Facet's access tokens: JWTs signed with ES256, each backed by a session in the account store
/// for revocation (logout, disabled accounts) and the idle timeout.
///
/// Verification accepts exactly the tokens this service makes: header `alg` ES256 (so `none`, `HS256` — also
/// with the public key as secret — and every other algorithm are refused before any key is used), a valid signature
/// over the exact bytes received, `iss` and `aud` equal to the configured ones, `nbf <= now < exp`, a known role and
/// tenant, a `jti` not revoked and whose session was used within the idle timeout. A token whose signature checked
/// out is remembered (`VerifiedTokenCache`), so that its signature is checked on its first use only.
public struct TokenService: Sendable {
    public struct Settings: Sendable, Hashable {
        public var issuer = "facet"
        public var audience = "facet"
        /// Absolute lifetime of a token (`session-max-hours`, 12 h by default).
        public var lifetime: TimeInterval = 12 * 3600
        /// A token unused for longer stops working (`session-idle-minutes`, 15 min by default).
        public var idleTimeout: TimeInterval = 15 * 60
        /// How many verified tokens are remembered, so that a token's signature is checked on its first use only
        /// (0: on every use). Times and the session are checked on every use regardless.
        public var verifiedTokenCacheSize = 4096

        public init() {}
    }

    public let settings: Settings
    public let store: any AccountStore
    private let signingKey: TokenSigningKey
    public let verificationKey: TokenVerificationKey
    private let verified: VerifiedTokenCache<TokenClaims>

    public init(signingKey: TokenSigningKey, store: any AccountStore, settings: Settings = Settings()) {
        self.signingKey = signingKey
        self.verificationKey = signingKey.publicKey
        self.store = store
        self.settings = settings
        verified = VerifiedTokenCache(capacity: settings.verifiedTokenCacheSize)
    }

    /// Issues a token for an account and starts its session.
    public func issue(tenant: String, username: String, role: Role, now: Date = Date()) async throws(ArchiveError)
        -> IssuedToken
    {
        let issued = Int64(now.timeIntervalSince1970.rounded(.down))
        let lifetime = Int64(max(1, settings.lifetime.rounded(.down)))
        let jti = UUID().uuidString.lowercased()
        let claims = TokenClaims(
            iss: settings.issuer, aud: settings.audience, sub: username, tenant: tenant, role: role.rawValue,
            iat: issued, nbf: issued, exp: issued + lifetime, jti: jti)
        let token = try encode(claims)
        let expires = Date(timeIntervalSince1970: Double(claims.exp))
        try await store.startSession(
            Session(tokenID: jti, tenant: tenant, username: username, issued: now, expires: expires, lastUse: now))
        return IssuedToken(
            accessToken: token, tokenID: jti,
            principal: Principal(tenant: tenant, username: username, role: role, tokenID: jti, expires: expires),
            expires: expires, expiresIn: Int(lifetime))
    }

    /// Signs claims as they are (used by `issue`, and by tests that need a token with unusual claims).
    func encode(_ claims: TokenClaims) throws(ArchiveError) -> String {
        let header = #"{"alg":"ES256","typ":"JWT","kid":"\#(verificationKey.keyID)"}"#
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let payload = try? encoder.encode(claims) else {
            throw ArchiveError(.key, "token claims cannot be encoded")
        }
        let signingInput = JSONWebToken.base64URL(Data(header.utf8)) + "." + JSONWebToken.base64URL(payload)
        let signature = try signingKey.sign(Data(signingInput.utf8))
        return signingInput + "." + JSONWebToken.base64URL(signature)
    }

    /// The principal a token stands for, or `.invalidToken` with the reason (safe to log: no PHI, no token bytes).
    /// A successful verification records a use of the session.
    public func verify(_ token: String, now: Date = Date()) async throws(ArchiveError) -> Principal {
        let claims = try verifiedClaims(token, now: now)
        guard let role = Role(rawValue: claims.role) else { throw invalid("unknown role") }
        switch try await store.useSession(tokenID: claims.jti, at: now, idleTimeout: settings.idleTimeout) {
        case .active: break
        case .revoked: throw invalid("token revoked")
        case .idle: throw invalid("session idle for longer than the idle timeout")
        case .unknown: throw invalid("no session for this token")
        }
        // Read on every check, so that a disabled account or a changed role stops its tokens at once, even if
        // revoking its sessions failed after the change.
        guard let standing = try await store.accountStatus(tenant: claims.tenant, username: claims.sub),
            standing.status == .active
        else { throw invalid("the account is disabled or gone") }
        guard standing.role == role else { throw invalid("the account's role changed since the token was issued") }
        return Principal(
            tenant: claims.tenant, username: claims.sub, role: role, tokenID: claims.jti,
            expires: Date(timeIntervalSince1970: Double(claims.exp)))
    }

    /// Ends the session of a valid token (logout). An invalid token is refused as by `verify`.
    public func revoke(_ token: String, now: Date = Date()) async throws(ArchiveError) {
        let claims = try verifiedClaims(token, now: now)
        try await store.revokeToken(claims.jti, expires: Date(timeIntervalSince1970: Double(claims.exp)))
    }

    /// Header, signature and claims checks, without the session. The signature of a token seen before is not
    /// checked again (the key never changes while the server runs); its claims are.
    func verifiedClaims(_ token: String, now: Date) throws(ArchiveError) -> TokenClaims {
        guard token.utf8.count <= JSONWebToken.maximumLength else { throw invalid("token too long") }
        let key = VerifiedTokenCache<TokenClaims>.key(token)
        if let claims = verified.value(for: key, now: now) { return try checked(claims, now: now) }
        let claims = try checked(try signedClaims(token), now: now)
        verified.insert(claims, for: key, expires: Date(timeIntervalSince1970: Double(claims.exp)), now: now)
        return claims
    }

    /// Header and signature checks, and the claims as they are.
    private func signedClaims(_ token: String) throws(ArchiveError) -> TokenClaims {
        let parts = try JSONWebToken.Parts(token, maximumLength: JSONWebToken.maximumLength)
        let header = try JSONWebToken.Header(parts.header)
        // The algorithm is fixed by Facet, never chosen by the token: anything but ES256 is refused before a key is
        // touched (this is what defeats `none` and HS256 signed with the public key).
        guard header.alg == "ES256" else { throw invalid("token algorithm is not ES256") }
        guard !header.hasCritical else { throw invalid("token has critical header parameters") }
        if let type = header.typ {
            guard type == "JWT" else { throw invalid("token type is not JWT") }
        }
        guard verificationKey.isValidSignature(parts.signature, for: parts.signingInput) else {
            throw invalid("token signature does not verify")
        }
        guard let claims = try? JSONDecoder().decode(TokenClaims.self, from: parts.payload) else {
            throw invalid("malformed token claims")
        }
        return claims
    }

    /// The claims checks that depend on the settings and the time.
    private func checked(_ claims: TokenClaims, now: Date) throws(ArchiveError) -> TokenClaims {
        guard claims.iss == settings.issuer else { throw invalid("token issuer is not accepted") }
        guard claims.aud == settings.audience else { throw invalid("token audience is not accepted") }
        let seconds = now.timeIntervalSince1970
        guard Double(claims.nbf) <= seconds else { throw invalid("token not valid yet") }
        guard seconds < Double(claims.exp) else { throw invalid("token expired") }
        guard Account.isValidTenant(claims.tenant), Account.isValidUsername(claims.sub), !claims.jti.isEmpty,
            claims.jti.utf8.count <= 64
        else { throw invalid("malformed token claims") }
        return claims
    }

    private func invalid(_ reason: String) -> ArchiveError { ArchiveError(.invalidToken, reason) }
}
