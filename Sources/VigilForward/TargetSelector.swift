/// fluentd out_forward's node selection: weighted round robin over the regular targets, each repeated
/// `weight / gcd` times in a shuffled order; targets of weight 0 never take part; standby targets join
/// only to cover the weight of unavailable regular targets.
struct TargetSelector {
    struct Candidate: Equatable {
        var weight: Int
        var standby: Bool
        var available: Bool
    }

    private var candidates: [Candidate] = []
    /// Target indices in round-robin order; unavailable regular targets stay in it and are skipped.
    private(set) var order: [Int] = []
    private var cursor = 0
    private var lastResortCursor = -1

    /// Recomputes the order when availability changed.
    mutating func update(_ candidates: [Candidate]) {
        guard candidates != self.candidates else { return }
        self.candidates = candidates
        let weighted = candidates.indices.filter { candidates[$0].weight > 0 }
        var members = weighted.filter { !candidates[$0].standby }
        var lostWeight = members.filter { !candidates[$0].available }.reduce(0) { $0 + candidates[$1].weight }
        for index in weighted where candidates[index].standby && candidates[index].available && lostWeight > 0 {
            members.append(index)
            lostWeight -= candidates[index].weight
        }
        let divisor = members.reduce(0) { gcd($0, candidates[$1].weight) }
        var order: [Int] = []
        for index in members {
            order.append(contentsOf: repeatElement(index, count: candidates[index].weight / divisor))
        }
        order.shuffle()
        self.order = order
        self.cursor = 0
    }

    /// The next available target in round-robin order that is not in `excluded`.
    mutating func next(excluding excluded: Set<Int>) -> Int? {
        for _ in 0..<self.order.count {
            self.cursor = (self.cursor + 1) % self.order.count
            let index = self.order[self.cursor]
            if self.candidates[index].available && !excluded.contains(index) { return index }
        }
        return nil
    }

    /// When no target is available: the targets of non-zero weight in turn, so that a batch is still
    /// tried (at the retry pace) before heartbeats have recovered one.
    mutating func lastResort() -> Int? {
        let indices = self.candidates.indices.filter { self.candidates[$0].weight > 0 }
        guard !indices.isEmpty else { return nil }
        self.lastResortCursor = (self.lastResortCursor + 1) % indices.count
        return indices[self.lastResortCursor]
    }
}

private func gcd(_ a: Int, _ b: Int) -> Int {
    b == 0 ? a : gcd(b, a % b)
}
