/// Families a collector leaves to be written while the response is sent, a piece at a time, rather
/// than into its buffer: a thousand containers' series are 20 MB of text that need never be in memory
/// at once.
///
/// The collector reads everything during its collection (its deadline covers the reading); writing
/// works from what it read and cannot block.
public protocol StreamedFamilies: Sendable {
    /// The families this writes (another collector's textfile must not declare them again).
    var families: [MetricFamily] { get }

    /// Writes the next samples into `writer`, stopping once it holds at least `limit` bytes. Returns
    /// whether everything has been written.
    mutating func write(into writer: inout MetricWriter, until limit: Int) -> Bool
}

extension StreamedFamilies {
    /// Writes everything at once (tests, and outputs too small to be worth streaming).
    public func writeAll(into writer: inout MetricWriter) {
        var rest = self
        while !rest.write(into: &writer, until: .max) {}
    }
}
