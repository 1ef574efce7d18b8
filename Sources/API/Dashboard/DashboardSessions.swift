import Crypto
import Foundation

/// Who may look at the dashboard. A browser logs in once — with the API token, or with a
/// one-time link `cohort dashboard` prints (Jupyter's way) — and gets a session cookie
/// (`HttpOnly`, `SameSite=Strict`). Cookies, links and the forms' CSRF tokens are signed with
/// a key drawn from the API token, so nothing is kept on disk, a restarted server still
/// knows its sessions, and a new token ends every session at once.
public final class DashboardSessions: @unchecked Sendable {
    public static let cookieName = "cohort_session"
    /// How long a session lasts, and a login link may be used.
    public static let sessionLifetime: TimeInterval = 12 * 3600
    public static let linkLifetime: TimeInterval = 5 * 60

    public struct Session: Sendable {
        /// Names the session (and its CSRF token); random.
        public var nonce: String
        public var expires: Date
    }

    private let key: SymmetricKey
    private let lock = NSLock()
    /// Sessions logged out and links used, until they would have expired anyway.
    private var spent: [String: Date] = [:]

    public init(token: String) {
        key = SymmetricKey(data: SHA256.hash(data: Data("cohort dashboard\u{0}\(token)".utf8)))
    }

    /// A new session: its cookie's value and the session it names.
    func open(now: Date = Date()) -> (cookie: String, session: Session) {
        let session = Session(nonce: Self.nonce(), expires: now + Self.sessionLifetime)
        return (sign("session", session.nonce, session.expires), session)
    }

    /// The session a request's `Cookie` header carries, if it is valid and not logged out.
    func session(cookieHeader: String?, now: Date = Date()) -> Session? {
        guard let value = Self.cookie(Self.cookieName, in: cookieHeader),
              let (nonce, expires) = verify("session", value, now: now) else { return nil }
        lock.lock(); defer { lock.unlock() }
        return spent[nonce] == nil ? Session(nonce: nonce, expires: expires) : nil
    }

    /// Ends a session (logout): its cookie is refused from now on.
    func close(_ session: Session) {
        lock.lock(); defer { lock.unlock() }
        forgetExpired(now: Date())
        spent[session.nonce] = session.expires
    }

    /// A code for `/login?code=…`, good once and for `linkLifetime`.
    public func loginCode(now: Date = Date()) -> String {
        sign("login", Self.nonce(), now + Self.linkLifetime)
    }

    /// Whether `code` is a valid login code not used before; using it spends it.
    func redeem(_ code: String, now: Date = Date()) -> Bool {
        guard let (nonce, expires) = verify("login", code, now: now) else { return false }
        lock.lock(); defer { lock.unlock() }
        forgetExpired(now: now)
        guard spent[nonce] == nil else { return false }
        spent[nonce] = expires
        return true
    }

    /// The CSRF token a session's forms carry: tied to the session, unknowable to another site.
    func csrfToken(_ session: Session) -> String { mac("csrf|\(session.nonce)") }

    func csrfMatches(_ session: Session, _ given: String?) -> Bool {
        guard let given else { return false }
        return APIToken.matches(Substring(given), csrfToken(session))
    }

    // MARK: - Signing

    /// `EXPIRY.NONCE.MAC`, the MAC over purpose, expiry and nonce.
    private func sign(_ purpose: String, _ nonce: String, _ expires: Date) -> String {
        let seconds = Int(expires.timeIntervalSince1970)
        return "\(seconds).\(nonce).\(mac("\(purpose)|\(seconds)|\(nonce)"))"
    }

    private func verify(_ purpose: String, _ value: String, now: Date) -> (nonce: String, expires: Date)? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count <= 12, let seconds = Int(parts[0]), parts[1].count == 32,
              parts[1].allSatisfy(\.isHexDigit),
              APIToken.matches(parts[2], mac("\(purpose)|\(seconds)|\(parts[1])")) else { return nil }
        let expires = Date(timeIntervalSince1970: Double(seconds))
        return expires > now ? (String(parts[1]), expires) : nil
    }

    private func mac(_ text: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key).map { String(format: "%02x", $0) }.joined()
    }

    private static func nonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    private func forgetExpired(now: Date) {
        if spent.count > 1_000 { spent = spent.filter { $0.value > now } }
    }

    /// One cookie's value from a `Cookie` header (`a=1; cohort_session=…`).
    static func cookie(_ name: String, in header: String?) -> String? {
        guard let header else { return nil }
        for pair in header.split(separator: ";") {
            let trimmed = pair.drop { $0 == " " }
            if trimmed.hasPrefix(name + "=") { return String(trimmed.dropFirst(name.count + 1)) }
        }
        return nil
    }
}
