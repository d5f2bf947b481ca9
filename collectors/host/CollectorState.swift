import Synchronization

/// What a collector keeps between scrapes. Collectors are values shared by concurrent scrapes, so their
/// state lives in a box of its own behind a lock.
final class CollectorState<Value: Sendable>: Sendable {
    let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }
}
