import API
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Launcher

/// The CLI's way to a running `cohort serve`: `$COHORT_SERVER` (with `$COHORT_TOKEN` or the
/// state directory's token), else the server that `serve.json` in the state directory names,
/// if its process lives. Without one, commands read and write the store themselves.
struct Client {
    let base: String
    let token: String
    /// Named by $COHORT_SERVER: a server that may not see this machine's files.
    var elsewhere = false

    struct Failure: Error, CustomStringConvertible {
        var status: Int
        var description: String
    }

    static func discover() throws -> Client? {
        let state = PoolStore.defaultStateDirectory
        let environment = ProcessInfo.processInfo.environment
        if let server = environment["COHORT_SERVER"], !server.isEmpty {
            let token: String
            if let given = environment["COHORT_TOKEN"], !given.isEmpty { token = given } else {
                do { token = try APIToken.read(APIToken.defaultPath(stateDirectory: state)) } catch {
                    throw Exit.badInput("COHORT_SERVER is set but no token is: set COHORT_TOKEN (\(error))")
                }
            }
            return Client(base: server.hasSuffix("/") ? String(server.dropLast()) : server, token: token, elsewhere: true)
        }
        let endpointPath = APIHost.endpointPath(stateDirectory: state)
        guard FileManager.default.fileExists(atPath: endpointPath) else { return nil }
        // Whoever could write serve.json would be sent the token: trust only our own.
        do { try StateDirectory.checkTrusted(state, directory: true); try StateDirectory.checkTrusted(endpointPath, what: "the server's address file") } catch {
            throw Exit.badInput(error)
        }
        guard let data = FileManager.default.contents(atPath: endpointPath),
              let endpoint = try? JSONDecoder().decode(APIHost.Endpoint.self, from: data),
              kill(endpoint.pid, 0) == 0,
              let token = try? APIToken.read(APIToken.defaultPath(stateDirectory: state)) else { return nil }
        return Client(base: endpoint.url, token: token)
    }

    /// Sends one request and returns the status and body; a transport error is a Failure
    /// with status 0.
    func send(_ method: String, _ path: String, body: Data? = nil) throws(Failure) -> (status: Int, body: Data) {
        guard let url = URL(string: base + path) else { throw Failure(status: 0, description: "not a URL: \(base + path)") }
        var request = URLRequest(url: url, timeoutInterval: 60)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            box.set(data, (response as? HTTPURLResponse)?.statusCode, error)
            done.signal()
        }.resume()
        done.wait()
        let (data, status, error) = box.get()
        guard let status else { throw Failure(status: 0, description: "cannot reach the server at \(base): \(error.map { "\($0.localizedDescription)" } ?? "no answer")") }
        return (status, data ?? Data())
    }

    /// Sends a request and returns the body of a 2xx answer; anything else is a Failure
    /// with the server's message.
    func call(_ method: String, _ path: String, body: Data? = nil) throws(Failure) -> Data {
        let (status, data) = try send(method, path, body: body)
        guard (200..<300).contains(status) else {
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: data))?.error.message ?? String(decoding: data, as: UTF8.self)
            throw Failure(status: status, description: message)
        }
        return data
    }

    struct ErrorBody: Decodable {
        struct Detail: Decodable { var message: String }
        var error: Detail
    }

    final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private var value: (Data?, Int?, Error?) = (nil, nil, nil)
        func set(_ data: Data?, _ status: Int?, _ error: Error?) { lock.lock(); value = (data, status, error); lock.unlock() }
        func get() -> (Data?, Int?, Error?) { lock.lock(); defer { lock.unlock() }; return value }
    }
}
