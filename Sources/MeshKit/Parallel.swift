import Foundation

/// Runs `body` over `0..<count` split into contiguous chunks on all cores; each chunk's results come back in
/// order. Use where the work per element is independent.
public func parallelMap<T: Sendable>(
    _ count: Int, minimumChunk: Int = 2048, _ body: @Sendable (Range<Int>) -> [T]
) -> [T] {
    let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    let chunks = max(1, min(cores * 4, count / max(minimumChunk, 1)))
    if chunks == 1 { return body(0..<count) }
    let size = (count + chunks - 1) / chunks
    let results = ChunkResults<T>(count: chunks)
    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
        let start = chunk * size
        let end = min(count, start + size)
        results.store(chunk, start < end ? body(start..<end) : [])
    }
    return results.joined()
}

/// Slots written once each from concurrent chunks.
private final class ChunkResults<T: Sendable>: @unchecked Sendable {
    private var slots: [[T]]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: [], count: count) }

    func store(_ index: Int, _ value: [T]) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    func joined() -> [T] { slots.flatMap { $0 } }
}
