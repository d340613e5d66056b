import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A GET of one small document with hard limits: at most `maximumBytes` of body, `timeout` seconds in all, no
/// redirects, no cookies or cache. Blocks the calling thread (run it on a blocking pool, never on the cooperative
/// one).
final class BoundedDownload: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let maximumBytes: Int
    private let lock = NSLock()
    private var body = Data()
    private var failure: String?
    private let finished = DispatchSemaphore(value: 0)

    private init(maximumBytes: Int) {
        self.maximumBytes = maximumBytes
    }

    /// The body of a 200 answer, or a one-line reason (safe to log: no body bytes).
    static func get(_ url: URL, maximumBytes: Int, timeout: TimeInterval) -> Result<Data, DownloadFailure> {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.urlCache = nil
        let download = BoundedDownload(maximumBytes: maximumBytes)
        let session = URLSession(configuration: configuration, delegate: download, delegateQueue: nil)
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.setValue("application/json, application/jwk-set+json", forHTTPHeaderField: "Accept")
        let task = session.dataTask(with: request)
        task.resume()
        // The session's own timeouts end the task; this is the backstop if they do not.
        if download.finished.wait(timeout: .now() + timeout + 1) == .timedOut {
            task.cancel()
            download.fail("no answer within \(Int(timeout)) s")
        }
        // The session holds its delegate until it is invalidated.
        session.invalidateAndCancel()
        return download.lock.withLock {
            if let failure = download.failure { return .failure(DownloadFailure(message: failure)) }
            return .success(download.body)
        }
    }

    struct DownloadFailure: Error {
        var message: String
    }

    private func fail(_ reason: String) {
        lock.withLock { if failure == nil { failure = reason } }
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        if status != 200 {
            fail("HTTP status \(status)")
            completionHandler(.cancel)
        } else if response.expectedContentLength > Int64(maximumBytes) {
            fail("larger than \(maximumBytes) bytes")
            completionHandler(.cancel)
        } else {
            completionHandler(.allow)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let tooLarge = lock.withLock {
            body.append(data)
            return body.count > maximumBytes
        }
        if tooLarge {
            fail("larger than \(maximumBytes) bytes")
            dataTask.cancel()
        }
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        // A redirect could lead from https to http, or elsewhere: the configured URL is the only one fetched.
        fail("redirected (HTTP status \(response.statusCode)); configure the final URL")
        completionHandler(nil)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if let error { fail("cannot be fetched (\(error.localizedDescription))") }
        finished.signal()
    }
}
