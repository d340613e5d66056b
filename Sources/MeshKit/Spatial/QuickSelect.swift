/// Hoare quickselect: reorders `values[start..<end]` so that slot `k` holds the element that sorting by `key`
/// would put there, with no larger key before it and no smaller one after.
@inline(__always)
func quickSelect<T>(_ values: inout [T], _ start: Int, _ end: Int, _ k: Int, key: (T) -> Double) {
    var lo = start
    var hi = end - 1
    while lo < hi {
        let pivot = key(values[(lo + hi) / 2])
        var i = lo
        var j = hi
        while i <= j {
            while key(values[i]) < pivot { i += 1 }
            while key(values[j]) > pivot { j -= 1 }
            if i <= j {
                values.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        if k <= j { hi = j } else if k >= i { lo = i } else { return }
    }
}
