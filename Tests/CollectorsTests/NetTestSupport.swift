/// The whitespace-separated fields of a line (for tests of the network collectors that work out
/// expected values from fixture files themselves).
func words(_ line: some StringProtocol) -> [String] {
    String(line).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
}
